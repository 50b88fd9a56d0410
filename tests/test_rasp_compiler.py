"""The RASP compiler: compiled transformers against the reference evaluator.

Categorical outputs must be equal; numerical ones within NUMERICAL_TOLERANCE (absolute, float32
weights; it does not grow with the length: checked at 6 and at 24 tokens). Every intermediate
SOp is checked too, decoded from the final residual stream.
"""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from th1nker.rasp.compiler import compile_program
from th1nker.rasp.evaluate import RaspError, evaluate_all
from th1nker.rasp.language import (
    Aggregate,
    Comparison,
    Full,
    LinearSequenceMap,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    indices,
    numerical,
    tokens,
)
from th1nker.rasp.library import PROGRAMS, make_frac_prevs, make_length, shift_by
from th1nker.rasp.sampler import SAMPLE_VOCAB, sample_program
from th1nker.rasp.values import CompileError

NUMERICAL_TOLERANCE = 1e-4


def _agree(got, want, numerical_sop: bool) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if numerical_sop or isinstance(want, float):
        return abs(float(got) - float(want)) <= NUMERICAL_TOLERANCE
    return got == want


def check_agreement(program: SOp, vocab, max_seq_len: int, causal: bool, inputs) -> int:
    """Compile and compare every SOp of the program on `inputs` (those the evaluator gives a
    value); returns how many inputs were compared."""
    compiled = compile_program(program, vocab, max_seq_len, causal=causal)
    ids, valid = compiled.encode(inputs)
    residual = compiled.model(ids, valid).detach()
    decoded = {node.id: compiled.decode(residual, compiled.graph.name(node))
               for node in compiled.graph.sops}  # fmt: skip
    compared = 0
    for b, row in enumerate(inputs):
        try:
            want = evaluate_all(compiled.graph.output, row, causal=causal)
        except RaspError:
            continue
        compared += 1
        for node in compiled.graph.sops:
            got, expected = decoded[node.id][b][: len(row)], want[node.id]
            assert all(
                _agree(g, w, node.is_numerical) for g, w in zip(got, expected, strict=True)
            ), f"{compiled.graph.name(node)} on {row}: compiled {got}, evaluator {expected}"
    return compared


def _random_inputs(rng: random.Random, vocab, max_seq_len: int, per_length: int) -> list:
    return [
        [rng.choice(vocab) for _ in range(n)]
        for n in range(1, max_seq_len + 1)
        for _ in range(per_length)
    ]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_library_program_compiles_exactly(name):
    entry = PROGRAMS[name]
    rng = random.Random(name)
    for max_seq_len in (6, 12):
        inputs = _random_inputs(rng, entry.vocab, max_seq_len, 12)
        compared = check_agreement(
            entry.make(max_seq_len), entry.vocab, max_seq_len, entry.causal, inputs
        )
        assert compared >= len(inputs) // 2


def test_every_short_input_of_a_small_vocabulary():
    """Exhaustive: all 2^1 + .. + 2^7 inputs over {(, )} for pair balance and shuffle-Dyck."""
    inputs = [list(p) for n in range(1, 8) for p in itertools.product("()", repeat=n)]
    assert check_agreement(PROGRAMS["pair_balance"].make(7), ("(", ")", "x"), 7, False, inputs)
    dyck = PROGRAMS["shuffle_dyck2"]
    assert check_agreement(dyck.make(7), dyck.vocab, 7, False, inputs) == len(inputs)


def test_random_programs_compile_exactly():
    """1000 sampled programs (2..8 operations, random encodings, 30% causal), every SOp of each
    on 3 random inputs of every length 1..6 (benchmarks/bench_rasp.py runs more inputs)."""
    compared = refused = 0
    for seed in range(1000):
        rng = random.Random(seed)
        program = sample_program(rng, operations=rng.randint(2, 8))
        causal = rng.random() < 0.3
        inputs = _random_inputs(rng, SAMPLE_VOCAB, 6, 3)
        try:
            compared += check_agreement(program, SAMPLE_VOCAB, 6, causal, inputs) > 0
        except CompileError:
            refused += 1
    assert compared >= 800 and refused <= 150, (compared, refused)


# the divergences of tracr, fixed on purpose ----------------------------------------------


def test_length_decodes_exactly_up_to_max_seq_len():
    """tracr's SelectorWidth decodes 11 tokens as 10 at its default; every length is exact."""
    compiled = compile_program(make_length(), ["a"], 64)
    lengths = [row[0] for row in compiled.run([["a"] * n for n in range(1, 65)])]
    assert lengths == list(range(1, 65))


def test_numerical_map_after_a_mean_uses_the_means():
    """tracr discretises this Map on {0, 1} and gives [1, 1, 0, 1, 0] on aabab."""
    program = numerical(Map(lambda x: x > 0.5, make_frac_prevs(tokens == "a")))
    compiled = compile_program(program, ["a", "b"], 5)
    assert compiled.run([list("aabab")]) == [[1.0] * 5]
    check_agreement(program, ["a", "b"], 8, False, _random_inputs(random.Random(0), "ab", 8, 20))


def test_categorical_aggregate_of_none_is_none():
    """tracr's compiled model gives a value where the evaluator gives None."""
    program = Aggregate(Select(indices, indices, Comparison.EQ), shift_by(1, tokens))
    compiled = compile_program(program, ["a", "b"], 5)
    assert compiled.run([list("abab")]) == [[None, "a", "b", "a"]]


def test_value_space_wider_than_the_query_and_key_spaces():
    """tracr crashes when the averaged SOp has more values than the selector's spaces."""
    parity = (indices % 2).named("parity")
    vocab = [f"t{i}" for i in range(20)]
    program = Aggregate(Select(parity, parity, Comparison.EQ) & Select(indices, indices,
                        Comparison.EQ), tokens)  # fmt: skip
    check_agreement(program, vocab, 6, False, _random_inputs(random.Random(1), vocab, 6, 5))
    narrow = Select(Full(0), Full(0), Comparison.EQ) & Select(indices, indices, Comparison.EQ)
    check_agreement(Aggregate(narrow, tokens), vocab, 6, True,
                    _random_inputs(random.Random(2), vocab, 6, 5))  # fmt: skip


# composite selectors, which tracr refuses --------------------------------------------------


@pytest.mark.parametrize("combine", ["and", "or", "not", "nested"])
def test_composite_selectors(combine):
    before = Select(indices, indices, Comparison.LT)
    same = Select(tokens, tokens, Comparison.EQ)
    selector = {
        "and": before & same,
        "or": before | same,
        "not": ~same,
        "nested": ~(before | (same & ~Select(tokens, Full("a"), Comparison.NEQ))),
    }[combine]
    for program in (SelectorWidth(selector), numerical(Aggregate(selector, numerical(indices),
                                                                 default=0))):  # fmt: skip
        for causal in (False, True):
            inputs = _random_inputs(random.Random(combine), "abc", 7, 6)
            assert check_agreement(program, "abc", 7, causal, inputs) == len(inputs)


def test_numerical_tolerance_does_not_grow_with_length():
    program = make_frac_prevs(tokens == "a")
    compiled = compile_program(program, "ab", 24)
    rng = random.Random(3)
    worst = {}
    for n in (6, 24):
        inputs = [[rng.choice("ab") for _ in range(n)] for _ in range(30)]
        got = compiled.run(inputs)
        worst[n] = max(
            abs(g - x[: i + 1].count("a") / (i + 1))
            for x, row in zip(inputs, got, strict=True)
            for i, g in enumerate(row)
        )
    assert worst[6] <= NUMERICAL_TOLERANCE and worst[24] <= NUMERICAL_TOLERANCE, worst


# refusals, before compiling -------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "message"),
    [
        (lambda: Aggregate(Select(numerical(indices), indices, Comparison.EQ), tokens),
         r"select .*keys 'indices.*' are numerical; a Select compares categorical"),
        (lambda: Aggregate(Select(indices, indices, Comparison.EQ), numerical(indices)),
         r"aggregate .* is categorical but averages the numerical"),
        (lambda: numerical(Aggregate(Select(indices, indices, Comparison.EQ), numerical(indices),
                                     default=None)),
         r"numerical with default None; a numerical Aggregate needs a numeric default"),
        (lambda: numerical(Aggregate(Select(indices, indices, Comparison.EQ), tokens, default=0)),
         r"numerical .*its values 'tokens' are not always numbers"),
        (lambda: SequenceMap(lambda a, b: a, numerical(indices), tokens),
         r"its input 'indices.*' is numerical; a SequenceMap reads categorical inputs"),
        (lambda: LinearSequenceMap(shift_by(1, indices), indices, 1, 1),
         r"its input .* is not always a number; a numerical LinearSequenceMap adds numbers"),
        (lambda: numerical(Map(lambda x: "a", indices)),
         r"numerical but can be None or a non-number"),
        (lambda: SequenceMap(lambda a, b: a * 1000 + b, indices, indices + 1),
         r"more than 20000 possible values"),
    ],
)  # fmt: skip
def test_refused_combinations_name_the_operation(program, message):
    with pytest.raises(CompileError, match=message):
        compile_program(program(), "ab", 200)


def test_bad_compile_arguments_and_inputs():
    with pytest.raises(CompileError, match="max_seq_len 0"):
        compile_program(make_length(), "ab", 0)
    with pytest.raises(CompileError, match="repeats a token"):
        compile_program(make_length(), ["a", "a"], 4)
    with pytest.raises(CompileError, match="vocab holds None"):
        compile_program(make_length(), ["a", None], 4)
    compiled = compile_program(make_length(), "ab", 4)
    with pytest.raises(ValueError, match="input token 'c' is not in the compiled vocab"):
        compiled.run([list("abc")])
    with pytest.raises(ValueError, match=r"input lengths must be 1..4"):
        compiled.run([list("ababa")])


# the stages and the module ----------------------------------------------------------------


def test_stages_are_inspectable_and_describe_the_model():
    compiled = compile_program(PROGRAMS["sort"].make(5), PROGRAMS["sort"].vocab, 5)
    text = compiled.describe()
    for name, _, _ in compiled.layout.spans():
        assert name in text
    for layer in compiled.layers:
        for block in layer.heads + layer.mlps:
            assert block.role in text
    assert f"{len(compiled.layers)} layers" in text
    assert compiled.layout.directions[0].name == "one"
    assert [s for s in compiled.values.values() if s.values is None] == []


def test_lookups_spend_units_only_where_they_write():
    """A discretising MLP steps only where f changes; a lookup has no unit for a value it maps
    to None. Both still agree with the evaluator (the library tests)."""
    balance = PROGRAMS["pair_balance"].make(20)
    compiled = compile_program(balance < 0, PROGRAMS["pair_balance"].vocab, 20)
    (step,) = [b for b in compiled.blocks if b.role.startswith(compiled.output_name + " =")]
    assert len(compiled.values[balance.id].values) > 1000 and step.hidden == 2
    sparse = SequenceMap(lambda i, t: t if i == 0 else None, indices, tokens).named("first")
    (lookup,) = compile_program(sparse, ["a", "b", "c"], 10).blocks
    assert lookup.hidden == 3  # (0, a), (0, b), (0, c) of the 30 pairs
    assert compile_program(sparse, ["a", "b", "c"], 10).run([list("bca")]) == [["b", None, None]]


def test_batched_run_on_the_model_device_and_dtype():
    """A batch of inputs of different lengths (padding never counts) == one at a time, also
    in float64."""
    entry = PROGRAMS["sort_freq"]
    compiled = compile_program(entry.make(8), entry.vocab, 8)
    rng = random.Random(4)
    inputs = [[rng.choice(entry.vocab) for _ in range(rng.randint(1, 8))] for _ in range(40)]
    together = compiled.run(inputs)
    assert together == [compiled.run([x])[0] for x in inputs]
    compiled.model.double()
    assert compiled.run(inputs) == together
    if torch.cuda.is_available():
        compiled.model.cuda()
        assert compiled.run(inputs) == together


def test_layout_figure_marks_reads_and_writes(tmp_path):
    from th1nker.rasp.figure import READ, WRITE, plot_layout, usage

    entry = PROGRAMS["sort_freq"]
    compiled = compile_program(entry.make(5), entry.vocab, 5)
    grid, labels = usage(compiled)
    assert grid.shape == (len(compiled.layout), 1 + 2 * len(compiled.layers))
    assert labels[:3] == ["embed", "0.attn", "0.mlp"]
    output = compiled.layout.index(compiled.layout.of(compiled.output_name)[0])
    last_head = 1 + 2 * (len(compiled.layers) - 1)
    assert grid[output, last_head] == WRITE and (grid[output, :last_head] == 0).all()
    tokens_row = compiled.layout.index(compiled.layout.of("tokens")[0])
    assert grid[tokens_row, 0] == WRITE and grid[tokens_row, last_head] == READ
    plot_layout(compiled, tmp_path / "layout.png")
    assert (tmp_path / "layout.png").stat().st_size > 1000


def test_sampler_is_reproducible():
    first = sample_program(random.Random(7), operations=6)
    again = sample_program(random.Random(7), operations=6)
    inputs = [[1, 0, 4, 2], [3, 3]]
    try:
        values = [evaluate_all(first, x)[first.id] for x in inputs]
    except RaspError:
        values = None
    try:
        again_values = [evaluate_all(again, x)[again.id] for x in inputs]
    except RaspError:
        again_values = None
    assert values == again_values
    from th1nker.rasp.language import walk

    assert [n.kind for n in walk(first)] == [n.kind for n in walk(again)]
    assert [n.name for n in walk(first)][-1] == [n.name for n in walk(again)][-1]
