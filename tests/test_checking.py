import torch
from helpers import records, scheme

from th1nker.tasks.checking import check_answer, check_batch
from th1nker.tasks.numbers import encode_number
from th1nker.tasks.scheme import load_scheme
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import EOS, MUL, NEG, PAD, POINT, POW, TOKEN_IDS

FACTOR_INPUT = [
    TOKEN_IDS["task:factorise"],
    TOKEN_IDS["@"],
    10,
    *encode_number(360, 10),
    TOKEN_IDS["="],
]


def _factor(output, number_input=FACTOR_INPUT):
    return check_answer("factorize", number_input, [], output, 10)


def test_the_true_targets_are_correct_for_every_task():
    for path in (
        "configs/tasks/mixed.yaml",
        "configs/tasks/memory.yaml",
        "configs/tasks/all_operators.yaml",
    ):
        batch = ProblemStream(load_scheme(path), batch_size=500).batch(0).to_tensors()
        verdicts = check_batch(batch, batch["target_ids"])
        assert all(v.correct for v in verdicts), [v for v in verdicts if not v.correct][:3]


def test_wrong_answers_are_wrong_with_a_reason():
    batch = (
        ProblemStream(load_scheme("configs/tasks/mixed.yaml"), batch_size=300).batch(0).to_tensors()
    )
    shifted = batch["target_ids"].clone()
    shifted[:, 0] = torch.where(shifted[:, 0] == 1, 0, 1)  # change the first digit / factor digit
    verdicts = check_batch(batch, shifted)
    assert not any(v.correct for v in verdicts)
    assert all(v.reason for v in verdicts)


def test_numeric_answers_compare_values():
    assert check_answer("arithmetic", [], [3, EOS], [3, EOS, 7, 7], 10).correct  # junk after eos
    assert check_answer("arithmetic", [], [3, EOS], [3, 0, EOS], 10).correct  # 03 == 3
    assert check_answer("arithmetic", [], [NEG, 3, EOS], [NEG, 3, PAD], 10).correct
    verdict = check_answer("arithmetic", [], [NEG, 3, EOS], [3, EOS], 10)
    assert not verdict.correct and verdict.reason == "expected -3" and verdict.value == "3"


def test_factorizations_in_any_order_or_grouping_count():
    canonical = [2, POW, 3, MUL, 3, POW, 2, MUL, 5, EOS]
    assert _factor(canonical).correct
    assert _factor([5, MUL, 2, MUL, 3, MUL, 2, MUL, 3, MUL, 2, EOS]).correct
    assert _factor([3, POW, 2, MUL, 2, POW, 3, MUL, 5]).correct  # no eos: the whole output
    shuffled = _factor([5, MUL, 2, MUL, 3, MUL, 2, MUL, 3, MUL, 2, EOS])
    assert shuffled.value == "2^3*3^2*5"  # the answer is reported in canonical form


def test_bad_factorizations_say_why():
    assert _factor([4, MUL, 2, MUL, 9, MUL, 5]).reason == "factor 4 is not prime"
    assert _factor([1, MUL, 2, POW, 3, MUL, 3, POW, 2, MUL, 5]).reason == "factor 1 is not prime"
    assert _factor([2, POW, 3, MUL, 5]).reason == "factors multiply to 40, not 360"
    assert _factor([2, POW, 0, MUL, 5]).reason == "exponent 0 is not positive"
    huge = _factor([2, POW, *[9] * 30, EOS])  # 2^(10^30): refused without computing it
    assert huge.reason == "factors multiply to more than 360" and huge.value.startswith("2^")
    assert _factor([7, POW, 9, EOS]).reason == "factors multiply to more than 360"
    assert "malformed" in _factor([2, POW, POW, 3]).reason
    assert "malformed" in _factor([MUL, 2]).reason
    prime_input = [
        TOKEN_IDS["task:factorise"],
        TOKEN_IDS["@"],
        10,
        *encode_number(7, 10),
        TOKEN_IDS["="],
    ]
    assert _factor([7, EOS], prime_input).correct
    assert not _factor([1, MUL, 7, EOS], prime_input).correct


def test_malformed_outputs_never_crash():
    for output in (
        [],
        [EOS],
        [POINT],
        [NEG],
        [NEG, NEG, 1],
        [300, 1],
        [1, POINT],
        [TOKEN_IDS["@"]],
    ):
        for task in ("arithmetic", "base_convert", "factorize", "copy", "recall"):
            verdict = check_answer(task, FACTOR_INPUT, [1, EOS], output, 10)
            assert not verdict.correct and verdict.reason


def test_fractions_decode_but_do_not_equal_integers():
    verdict = check_answer("arithmetic", [], [1, EOS], [1, POINT, 5, EOS], 10)
    assert not verdict.correct and verdict.value == "3/2"


def test_memory_tasks_compare_symbols():
    rows = records(scheme(generators=[{"type": "reverse"}]), 5)
    for r in rows:
        assert check_answer(
            "reverse", r["input_ids"], r["target_ids"], r["target_ids"], 256
        ).correct
        assert not check_answer("reverse", r["input_ids"], r["target_ids"], [EOS], 256).correct
