"""Algorithm traces in the task language: every state of many random problems equals an
independent step-by-step evaluation (tests/reference.py, on the decoded input tokens), the last
state is the answer, and trace lengths follow the stated rules."""

import json
import math
import re
from fractions import Fraction

import pytest
import torch
from helpers import scheme
from reference import (
    canonical,
    decimal_text,
    long_multiplication,
    read_expression,
    read_number,
    read_state,
    reduction_states,
    signed_long_multiplication,
    trial_division,
)
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.tasks.generators.base_convert import state_bases
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import PAD, TOKEN_IDS

N = 10_000


def traced(generators: list[dict], bases=(10,), n=N, seed=0):
    """(records with their traces, the batch's trace tensors) of `n` train problems."""
    stream = ProblemStream(
        scheme(generators=generators, bases={"values": list(bases)}, max_length=512),
        "train", batch_size=n, seed=seed,
    )  # fmt: skip
    batch = stream.batch(0)
    return batch.records("train", trace=True), batch.trace_tensors()


def expected_states(record: dict) -> list[str]:
    expression, base, out_base = read_expression(record["input_ids"])
    operands = expression.split("*")
    if len(operands) == 2 and all(re.fullmatch(r"-?\d+(\.\d+)?", o) for o in operands):
        a, b = (Fraction(o) for o in operands)  # a product of two numbers
        return [decimal_text(s) for s in signed_long_multiplication(a, b, out_base)]
    return reduction_states(expression)


@pytest.mark.parametrize(
    ("generators", "bases"),
    [
        ([{"type": "arithmetic", "operations": "+-*", "operands": [2, 6], "digits": [1, 3]}],
         (10,)),
        ([{"type": "arithmetic", "operations": "*", "digits": [1, 6]}], (2, 10, 16, 256)),
        ([{"type": "arithmetic", "operations": "+-*/%^", "operands": [1, 5], "digits": [1, 4]}],
         (3, 10, 36)),
        ([{"type": "arithmetic", "operations": "+-", "digits": [1, 12]}], (10,)),
        ([{"type": "arithmetic", "operations": "+-*^", "operands": [2, 5], "digits": [1, 4],
           "negative": 0.4, "decimals": 0.4, "decimal_places": [1, 3]}], (10, 20, 250)),
        ([{"type": "arithmetic", "operations": "*", "digits": [1, 5], "negative": 0.5,
           "decimals": 0.5}], (10, 100)),
    ],
    ids=["expressions", "multiplication", "all-operators", "add-sub", "signed-decimal",
         "signed-decimal-multiplication"],
)  # fmt: skip
def test_every_state_equals_a_step_by_step_evaluation(generators, bases):
    records, tensors = traced(generators, bases)
    for i, record in enumerate(records):
        out_base = read_expression(record["input_ids"])[2]
        states = [read_state(ids, out_base) for ids in record["trace_ids"]]
        assert states == expected_states(record), record["problem"]
        assert record["trace"] == states  # the printed trace says the same
        assert record["trace_ids"][-1] == record["target_ids"]  # the last state is the answer
        n_ops = sum(c in "+-*/%^" for c in record["problem"])
        n_ops -= len(re.findall(r"(?:^|(?<=[-+*/%^]))-", record["problem"]))  # signs
        if record["problem"].count("*") == 1 and n_ops == 1:
            b = Fraction(record["problem"].split("*")[1])
            assert len(states) == len(signed_long_multiplication(1, b, out_base))  # digits of b
        else:
            assert len(states) == max(1, n_ops)  # one operator reduced per state
        assert int(tensors["trace_len"][i]) == len(states)


def test_long_multiplication_has_a_state_per_digit_of_the_multiplier():
    records, _ = traced([{"type": "arithmetic", "operations": "*", "digits": [1, 6]}], n=200)
    by_digits = {len(r["problem"].split("*")[1]): len(r["trace"]) for r in records}
    assert by_digits == {d: d for d in by_digits}  # base 10: one state per digit of b
    assert reduction_states("47*12") == ["564"] and long_multiplication(47, 12, 10) == [94, 564]


def test_edge_cases_of_the_reference_rules():
    assert reduction_states("3+4*5-2") == ["3+20-2", "23-2", "21"]
    assert reduction_states("2-5-4") == ["-3-4", "-7"]
    assert reduction_states("2^3*4-1") == ["8*4-1", "32-1", "31"]
    assert reduction_states("7") == ["7"]
    assert long_multiplication(5, 0, 10) == [0]
    assert long_multiplication(3, 255, 256) == [765]


@pytest.mark.parametrize(
    "generator",
    [{"type": "copy"}, {"type": "recall"}, {"type": "reverse"}],
)
def test_generators_without_an_algorithm_trace_have_the_answer_as_their_one_state(generator):
    records, tensors = traced([generator], (256,), n=300)
    for record in records:
        assert record["trace_ids"] == [record["target_ids"]]
        assert record["trace"] == [record["answer"]]
    assert tensors["trace_len"].eq(1).all()


def test_trace_tensors_pad_states_and_mark_them():
    generators = [{"type": "arithmetic", "operations": "+-*", "operands": [2, 4], "digits": [1, 3]}]
    records, tensors = traced(generators, n=64)
    ids, mask, lengths = tensors["trace_ids"], tensors["trace_mask"], tensors["trace_len"]
    assert ids.shape[:2] == (64, int(lengths.max())) and mask.shape == ids.shape
    for i, record in enumerate(records):
        for k in range(ids.shape[1]):
            row = ids[i, k][mask[i, k]].tolist()
            assert row == (record["trace_ids"][k] if k < len(record["trace_ids"]) else [])
    assert ((ids == PAD) == ~mask).all()
    batch = ProblemStream(scheme(generators=generators), "train", 8, 0).batch(0)
    assert {"trace_ids", "trace_mask", "trace_len"} <= batch.to_tensors(trace=True).keys()
    assert "trace_ids" not in batch.to_tensors()
    assert torch.equal(batch.to_tensors(trace=True)["input_ids"], batch.to_tensors()["input_ids"])


def test_data_prints_traces_for_people_and_tools():
    runner = CliRunner()
    args = ["data", "generators.0.operations='*'", "generators.0.digits=[3,3]", "--n", "3"]
    result = runner.invoke(app, [*args, "--trace"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("trace: ") == 3 and result.stdout.count(" -> ") == 6
    result = runner.invoke(app, [*args, "--trace", "--format", "jsonl"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(len(r["trace"]) == 3 and r["trace"][-1] == r["answer"] for r in rows)


def reference_factorization_states(n: int) -> list[str]:
    """Divide by the smallest prime factor once per state until the cofactor is prime."""
    factors = trial_division(n)
    inner = [
        f"{canonical(factors[:k])}*{math.prod(factors[k:])}" for k in range(1, len(factors) - 1)
    ]
    return [*inner, canonical(factors)]


def reference_trial_states(n: int) -> list[str]:
    """Trial division by every prime d while d*d <= the cofactor: `d*q` (divides; retry d) or
    `d%r` (next d), then the canonical answer."""
    states, m, d = [], n, 2
    while d * d <= m:
        if len(trial_division(d)) == 1:  # d is prime
            q, r = divmod(m, d)
            states.append(f"{d}*{q}" if r == 0 else f"{d}%{r}")
            if r == 0:
                m = q
                continue
        d += 1
    return [*states, canonical(trial_division(n))]


def digits_by_divmod(value: int, base: int) -> list[int]:
    """The digits of |value| in `base`, least significant first (0 is one digit)."""
    digits, rest = [], abs(value)
    while True:
        rest, digit = divmod(rest, base)
        digits.append(digit)
        if rest == 0:
            return digits


def reference_horner_states(value: int, base: int) -> list[int]:
    """The value of the 1, 2, ... most significant digits of |value| in `base`, signed."""
    states, acc = [], 0
    for digit in reversed(digits_by_divmod(value, base)):
        acc = acc * base + digit
        states.append(-acc if value < 0 else acc)
    return states


def checked_factorization_traces(generator: dict, reference) -> list[tuple[int, int]]:
    """(number, trace length) of N traced problems of `generator` in bases 2/10/30/256, after
    checking every state and the record's text against `reference(number)`."""
    records, tensors = traced([generator], bases=(2, 10, 30, 256))
    checked = []
    for i, record in enumerate(records):
        number = read_number(record["input_ids"][3:-1], record["base"])
        expected = reference(number)
        states = [read_state(ids, record["out_base"]) for ids in record["trace_ids"]]
        assert states == expected, record["problem"]
        assert record["trace"] == expected and record["trace_ids"][-1] == record["target_ids"]
        checked.append((number, int(tensors["trace_len"][i])))
    return checked


@pytest.mark.parametrize(
    ("sampling", "max_number"), [("prime_digits", 10**3), ("log_uniform", 10**6)]
)  # prime_digits multiplies up to 12 primes <= max_number: the reference's trial division of
# those products costs about the second-largest prime per number
def test_factorization_states_divide_by_the_smallest_prime_factor(sampling, max_number):
    generator = {"type": "factorize", "factors": [1, 12], "max_number": max_number,
                 "sampling": sampling}  # fmt: skip
    for number, trace_len in checked_factorization_traces(
        generator, reference_factorization_states
    ):
        assert trace_len == max(1, len(trial_division(number)) - 1)
    assert reference_factorization_states(360) == [
        "2*180", "2^2*90", "2^3*45", "2^3*3*15", "2^3*3^2*5"
    ]  # fmt: skip
    assert reference_factorization_states(8) == ["2*4", "2^3"]
    assert reference_factorization_states(97) == ["97"]


def test_trial_division_states_test_each_prime_up_to_the_square_root():
    generator = {"type": "factorize", "factors": [1, 15], "max_number": 2**16,
                 "sampling": "log_uniform", "trace": "trial"}  # fmt: skip
    for number, trace_len in checked_factorization_traces(generator, reference_trial_states):
        assert trace_len == len(reference_trial_states(number))
    assert reference_trial_states(360) == [
        "2*180", "2*90", "2*45", "2%1", "3*15", "3*5", "2^3*3^2*5"
    ]  # fmt: skip
    assert reference_trial_states(77) == ["2%1", "3%2", "5%2", "7*11", "7*11"]
    assert reference_trial_states(4) == ["2*2", "2^2"]
    assert reference_trial_states(2) == ["2"]
    assert len(reference_trial_states(65521)) == 54 + 1  # a prime: every prime up to 255


def test_trial_trace_refuses_numbers_beyond_its_bound():
    generator = {"type": "factorize", "max_number": 2**24 + 1, "trace": "trial"}
    with pytest.raises(ValueError, match="trace 'trial' needs max_number <= 16777216"):
        traced([generator], n=1)


def test_base_conversion_states_are_horner_prefixes_in_the_target_base():
    generator = {"type": "base_convert", "digits": [1, 12], "negative": True}
    records, tensors = traced([generator], bases=(2, 4, 10, 16, 256))
    for i, record in enumerate(records):
        value = read_number(record["input_ids"][2:-4], record["base"])
        expected = reference_horner_states(value, record["base"])
        states = [read_state(ids, record["out_base"]) for ids in record["trace_ids"]]
        assert states == [str(v) for v in expected], record["problem"]
        assert record["trace_ids"][-1] == record["target_ids"]
        assert int(tensors["trace_len"][i]) == len(expected)
    assert reference_horner_states(255, 10) == [2, 25, 255]
    assert reference_horner_states(0, 16) == [0] and reference_horner_states(-5, 2) == [-1, -2, -5]


def written(value: int, base: int) -> list[int]:
    """Tokens of `value` in `base` (sign, digits least significant first, eos), by divmod."""
    return [TOKEN_IDS["!"]] * (value < 0) + digits_by_divmod(value, base) + [TOKEN_IDS["eos"]]


def reference_hub_states(value: int, base: int, out_base: int) -> list[tuple[int, int]]:
    """(value, written in) per state of the `hub` trace: powers of two meet in base 16."""

    def hub(b):
        return 16 if bin(b).count("1") == 1 else b

    a, b = hub(base), hub(out_base)
    states = [] if a == base else [(value, a)]
    if a != b:
        states += [(v, b) for v in reference_horner_states(value, a)]
    if out_base != b or not states:
        states.append((value, out_base))
    return states


def test_hub_base_conversion_states_meet_in_hex_between_powers_of_two():
    generator = {"type": "base_convert", "digits": [1, 12], "negative": True, "trace": "hub"}
    records, tensors = traced([generator], bases=(2, 4, 10, 16, 256, 3, 30))
    lengths = {}
    for i, record in enumerate(records):
        value = read_number(record["input_ids"][2:-4], record["base"])
        expected = reference_hub_states(value, record["base"], record["out_base"])
        assert record["trace_ids"] == [written(v, b) for v, b in expected], record["problem"]
        assert record["trace_ids"][-1] == record["target_ids"]
        assert int(tensors["trace_len"][i]) == len(expected)
        pair = (record["base"], record["out_base"])
        lengths[pair] = max(lengths.get(pair, 0), sum(map(len, record["trace_ids"])))
    assert reference_hub_states(255, 10, 16) == [(2, 16), (25, 16), (255, 16)]
    assert reference_hub_states(255, 2, 4) == [(255, 16), (255, 4)]
    assert reference_hub_states(255, 16, 2) == [(255, 2)]
    assert reference_hub_states(-7, 256, 10) == [(-7, 16), (-7, 10)]
    assert reference_hub_states(100, 3, 30) == [(1, 30), (3, 30), (11, 30), (33, 30), (100, 30)]
    # `solve --trace` reads each state a model wrote in the base of the same rule
    for (base, out_base), _ in lengths.items():
        for value in (0, 7, 255, 123456789):
            expected = [b for _, b in reference_hub_states(value, base, out_base)]
            assert state_bases(True, base, out_base, len(expected)) == expected, (base, out_base)
    assert state_bases(False, 10, 2, 3) == [2, 2, 2]
