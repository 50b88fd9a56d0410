"""Saving and loading compiled programs: the loaded program is the same program with the same
weights, checked against the original's outputs and the reference evaluator."""

from __future__ import annotations

import json
import random

import pytest
import torch
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.rasp.compiler import compile_program
from th1nker.rasp.evaluate import RaspError, evaluate
from th1nker.rasp.language import (
    Aggregate,
    Full,
    Map,
    Select,
    SelectorWidth,
    indices,
    numerical,
    tokens,
)
from th1nker.rasp.library import PROGRAMS, make_frac_prevs
from th1nker.rasp.sampler import SAMPLE_VOCAB, sample_program
from th1nker.rasp.saving import load_compiled, program_to_json, save_compiled
from th1nker.rasp.values import CompileError, ValueSet
from th1nker.train.storage import DamagedFile


def _inputs(vocab, max_seq_len: int, count: int, seed: int = 0) -> list[list]:
    rng = random.Random(seed)
    return [[rng.choice(vocab) for _ in range(rng.randint(1, max_seq_len))] for _ in range(count)]


def _round_trip(compiled, tmp_path):
    save_compiled(compiled, tmp_path / "saved")
    return load_compiled(tmp_path / "saved")


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_library_programs_load_as_they_were_saved(name, tmp_path):
    entry = PROGRAMS[name]
    compiled = compile_program(entry.make(8), entry.vocab, 8, causal=entry.causal)
    loaded = _round_trip(compiled, tmp_path)
    assert loaded.describe() == compiled.describe()
    assert loaded.causal == compiled.causal and loaded.vocab == compiled.vocab
    inputs = _inputs(entry.vocab, 8, 40)
    assert loaded.run(inputs) == compiled.run(inputs)
    for row in inputs[:10]:  # the loaded program's tables are the original's functions
        try:
            want = evaluate(compiled.program, row, causal=entry.causal)
        except RaspError:
            continue
        assert evaluate(loaded.program, row, causal=entry.causal) == want


def test_sampled_programs_load_as_they_were_saved(tmp_path):
    loaded_count = 0
    for seed in range(40):
        rng = random.Random(seed)
        program = sample_program(rng, operations=rng.randint(2, 6))
        try:
            compiled = compile_program(program, SAMPLE_VOCAB, 5, causal=seed % 3 == 0)
        except CompileError:
            continue
        loaded = _round_trip(compiled, tmp_path)
        inputs = _inputs(SAMPLE_VOCAB, 5, 20, seed)
        assert loaded.run(inputs) == compiled.run(inputs), seed
        loaded_count += 1
    assert loaded_count >= 25


def test_custom_predicates_composite_selectors_and_tuples(tmp_path):
    odd_after = Select(indices, indices, lambda key, query: key > query and key % 2 == 1)
    first_a = Select(tokens, tokens, lambda key, query: key == "a") & ~odd_after
    pair = Map(lambda x: (x, x), tokens).named("pair")
    program = Aggregate(Select(indices, indices, lambda k, q: k == q), pair).named("copy")
    width = SelectorWidth(first_a).named("width")
    for sop in (program, width):
        compiled = compile_program(sop, ["a", "b"], 6)
        loaded = _round_trip(compiled, tmp_path)
        inputs = _inputs(["a", "b"], 6, 30)
        assert loaded.run(inputs) == compiled.run(inputs)
    assert loaded.run([["a", "b", "a"]]) == [[2, 2, 2]]


def test_numerical_map_after_a_mean_reads_its_table_within_tolerance(tmp_path):
    program = numerical(Map(lambda x: x > 0.5, make_frac_prevs(tokens == "a")))
    compiled = compile_program(program, ["a", "b"], 8)
    loaded = _round_trip(compiled, tmp_path)
    assert loaded.run([list("aabab")]) == [[1.0] * 5]
    assert evaluate(loaded.program, list("aabab")) == [True] * 5


def test_fine_tuned_weights_are_saved_not_recompiled(tmp_path):
    entry = PROGRAMS["reverse"]
    compiled = compile_program(entry.make(6), entry.vocab, 6)
    with torch.no_grad():
        next(compiled.model.parameters()).add_(0.01)
    loaded = _round_trip(compiled, tmp_path)
    for (name, want), got in zip(
        compiled.model.state_dict().items(), loaded.model.state_dict().values(), strict=True
    ):
        assert torch.equal(got, want), name


def test_a_loaded_program_refuses_values_it_was_not_compiled_for(tmp_path):
    compiled = compile_program(Map(lambda x: x + "!", tokens).named("shout"), ["a", "b"], 4)
    loaded = _round_trip(compiled, tmp_path)
    with pytest.raises(RaspError, match="'shout'.*'z' is outside the values"):
        evaluate(loaded.program, ["a", "z"])


def test_unsaveable_values_and_damaged_files_are_named(tmp_path):
    program = Map(lambda x: x, Full(frozenset({1}))).named("frozen")
    with pytest.raises(ValueError, match="frozenset.*cannot be saved"):
        program_to_json(
            program, {program.sop.id: ValueSet((frozenset({1}),)), program.id: ValueSet(())}
        )
    compiled = compile_program(PROGRAMS["length"].make(4), PROGRAMS["length"].vocab, 4)
    saved = save_compiled(compiled, tmp_path / "saved")
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-3] + b"xyz")
    with pytest.raises(DamagedFile, match="model.safetensors is damaged"):
        load_compiled(saved)
    save_compiled(compiled, saved)  # a new save replaces the damaged one whole
    document = json.loads((saved / "program.json").read_text())
    assert document["max_seq_len"] == 4 and document["program"][-1]["name"] == "length"
    assert load_compiled(saved).run([["a", "b"]]) == [[2, 2]]
    with pytest.raises(FileNotFoundError, match="no saved compiled program"):
        load_compiled(tmp_path)


def test_th1nker_compile_writes_a_library_program_that_loads(tmp_path):
    runner = CliRunner()
    out = tmp_path / "sort"
    result = runner.invoke(app, ["compile", "--library", "sort", "--max-seq-len", "6",
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 layers" in result.output and "load_compiled" in result.output
    assert load_compiled(out).run([[3, 1, 2]]) == [[1, 2, 3]]
    for args, message in [
        (["--library", "nope"], "the library has length, reverse"),
        ([], "give one of --config FILE"),
        (["--library", "sort", "model.max_seq_len=3"], "takes no key=value overrides"),
    ]:
        refused = runner.invoke(app, ["compile", "--out", str(tmp_path / "x"), *args])
        assert refused.exit_code == 2 and message in refused.output, refused.output
