"""The compiled computer: RASP addition against Python integers, and the `compiled` family
through `th1nker compile / solve / eval / train` like a trained model."""

from __future__ import annotations

import random

import pytest
import torch
import yaml
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.models.family import build_model
from th1nker.rasp.arithmetic import addition_vocab, make_addition
from th1nker.rasp.compiler import compile_program
from th1nker.rasp.evaluate import evaluate
from th1nker.tasks.vocab import EOS, PAD, TOKEN_IDS
from th1nker.train.experiment import load_experiment

runner = CliRunner()


def _problem(a: int, b: int, base: int = 10) -> list[int]:
    return [TOKEN_IDS["@"], TOKEN_IDS[str(base % 256)], *_digits(a, base), TOKEN_IDS["+"],
            *_digits(b, base), TOKEN_IDS["="]]  # fmt: skip


def _digits(n: int, base: int) -> list[int]:
    out = []
    while True:
        n, d = divmod(n, base)
        out.append(d)
        if n == 0:
            return out


def _answer(tokens: list[int], base: int = 10) -> int | None:
    """The number written before eos (least significant digit first); None if malformed."""
    if EOS not in tokens:
        return None
    digits = tokens[: tokens.index(EOS)]
    if not digits or any(d >= base for d in digits) or any(t != PAD for t in
                                                           tokens[tokens.index(EOS) + 1:]):  # fmt: skip
        return None
    return sum(d * base**i for i, d in enumerate(digits))


EDGES = [(0, 0), (0, 7), (5, 5), (9, 1), (999_999, 1), (1, 999_999), (499_999, 500_001),
         (123, 456), (10**6 - 1, 10**6 - 1), (100_000, 0)]  # fmt: skip


def test_compiled_addition_equals_python_integers():
    """Edge cases (zero, carries through every digit, different lengths) and 3000 random
    problems of 1..6-digit operands, in base 10; the reference evaluator agrees too."""
    program = make_addition(10)
    compiled = compile_program(program, addition_vocab(10), 18)
    rng = random.Random(0)
    problems = EDGES + [
        (rng.randrange(10 ** rng.randint(0, 6)), rng.randrange(10 ** rng.randint(0, 6)))
        for _ in range(3000)
    ]
    answers = compiled.run([_problem(a, b) for a, b in problems])
    wrong = [(a, b) for (a, b), out in zip(problems, answers, strict=True) if _answer(out) != a + b]
    assert wrong == []
    for a, b in EDGES:
        assert _answer(evaluate(program, _problem(a, b))) == a + b


@pytest.mark.parametrize("base", [2, 16, 256])
def test_compiled_addition_in_other_bases(base):
    compiled = compile_program(make_addition(base), addition_vocab(base), 14)
    rng = random.Random(base)
    top = min(base**4, 10**9)
    problems = [(0, 0), (base - 1, 1), (base**4 - 1, 1)] + [
        (rng.randrange(top), rng.randrange(top)) for _ in range(300)
    ]
    problems = [(a, b) for a, b in problems if len(_problem(a, b, base)) <= 14]
    answers = compiled.run([_problem(a, b, base) for a, b in problems])
    assert [_answer(out, base) for out in answers] == [a + b for a, b in problems]


def _experiment(tmp_path, **model):
    config = {
        "name": "compiled_small",
        "task": {
            "name": "add_small",
            "generators": [{"type": "arithmetic", "operands": [2, 2], "operations": "+",
                            "digits": [1, 4], "ood": {"digits": [5, 5]}}],
            "bases": {"values": [10]},
            "max_length": 16,
        },
        "model": {"kind": "compiled", "program": "addition", "max_seq_len": 16, **model},
        "train": {"batch_size": 16, "max_steps": 2, "eval_every": 2, "checkpoint_every": 2,
                  "tensorboard": False, "log_every": 1},
        "optim": {"lr": 1.0e-5, "warmup_steps": 1},
        "eval": {"examples": 64, "final_examples": 64},
    }  # fmt: skip
    path = tmp_path / "compiled.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_compile_solve_and_eval_through_the_cli(tmp_path):
    config = _experiment(tmp_path)
    out = tmp_path / "checkpoint"
    figure = tmp_path / "layout.png"
    result = runner.invoke(
        app, ["compile", "--config", str(config), "--out", str(out), "--plot", str(figure)]
    )
    assert result.exit_code == 0, result.output
    assert "layer 0: attention" in result.output and "residual stream" in result.output
    assert figure.stat().st_size > 1000
    solved = runner.invoke(app, ["solve", "123+456", "9999+1", "--checkpoint", str(out)])
    assert solved.exit_code == 0, solved.output
    assert "123+456 = 579  right" in solved.output and "9999+1 = 10000  right" in solved.output
    evaluated = runner.invoke(app, ["eval", str(out), "--n", "200", "--split", "ood"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "exact match 1.0000" in evaluated.output


def test_fine_tuning_starts_from_the_compiled_weights(tmp_path):
    """th1nker train on a compiled model: its first loss is that of an exact computer (small),
    the weights move, and evaluation after two tiny steps is still exact."""
    experiment = load_experiment(_experiment(tmp_path), [f"train.runs_dir={tmp_path / 'runs'}"])
    model = build_model(experiment.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = runner.invoke(app, ["train", "--config", str(_experiment(tmp_path)),
                                 f"train.runs_dir={tmp_path / 'runs'}"])  # fmt: skip
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").iterdir())
    first = yaml.safe_load((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["loss"] < 0.05
    from th1nker.train.checkpoint import load_checkpoint

    _, tuned, _ = load_checkpoint(run, "cpu")
    moved = [k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])]
    assert moved, "fine-tuning left every weight as compiled"
    assert '"test_accuracy": 1.0' in result.output


def test_refusals_name_the_field(tmp_path):
    bad_task = runner.invoke(app, ["compile", "--config", str(_experiment(tmp_path)), "--out",
                                   str(tmp_path / "x"), "task.generators=[{type: arithmetic, "
                                   "operations: '+-', operands: [2, 2]}]"])  # fmt: skip
    assert bad_task.exit_code != 0
    assert "model.program addition" in bad_task.output and "'+-'" in bad_task.output
    unknown = runner.invoke(app, ["compile", "--config", str(_experiment(tmp_path)),
                                  "--out", str(tmp_path / "y"), "model.program=multiply"])  # fmt: skip
    assert unknown.exit_code != 0 and "known programs are ['addition']" in unknown.output
    short = runner.invoke(app, ["compile", "--config", str(_experiment(tmp_path, max_seq_len=8)),
                                "--out", str(tmp_path / "z")])  # fmt: skip
    assert (
        short.exit_code != 0
        and "model.max_seq_len 8 is smaller than task.max_length 16" in short.output
    )
    not_compiled = runner.invoke(app, ["compile", "--config",
                                       "configs/experiments/tiny.yaml", "--out", str(tmp_path / "w")])  # fmt: skip
    assert not_compiled.exit_code != 0 and "needs model.kind: compiled" in not_compiled.output
