"""`th1nker train / eval / solve` from the command line, on the tiny experiment."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from th1nker.cli import app

runner = CliRunner()
TINY = str(Path(__file__).parents[1] / "configs" / "experiments" / "tiny.yaml")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["train", "--config", TINY, f"train.runs_dir={runs}"])
    assert result.exit_code == 0, result.output
    assert "name: tiny" in result.output  # the resolved config is printed first
    (run,) = runs.iterdir()
    return run


def test_train_eval_solve_end_to_end(run_dir):
    result = runner.invoke(app, ["eval", str(run_dir), "--n", "50", "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.output)
    assert table["total"] == 50 and 0 <= table["accuracy"] <= 1
    assert set(table["by"]) == {"task", "base", "digits", "operands"}
    result = runner.invoke(app, ["eval", str(run_dir), "--split", "ood", "--n", "20"])
    assert result.exit_code == 0 and "ood exact match" in result.output
    result = runner.invoke(
        app, ["solve", "12+34", "9-80", "--checkpoint", str(run_dir), "--json", "--trace"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["problem"] for r in rows] == ["12+34", "9-80"]
    assert [r["expected"] for r in rows] == ["46", "-71"]
    for row in rows:
        assert {"problem", "answer", "correct", "steps", "trace"} <= row.keys()
        assert row["correct"] == (row["answer"] == row["expected"])
        assert len(row["trace"]) == row["steps"] == 2


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.halting=true", "model.max_thinking_steps=3", "model.steps=3"],
        ["--config", str(Path(TINY).with_name("trm.yaml"))],
    ],
    ids=["th1nker-halting", "trm"],
)
def test_solve_trace_shows_each_steps_answer_and_halting_probability(tmp_path, overrides):
    if overrides[0] == "--config":
        shrink = ["model.dim=32", "model.n_layers=1", "model.supervision_steps=3",
                  "model.input_cache_size=64", "train.batch_size=16"]  # fmt: skip
        args = ["train", *overrides, *shrink]
    else:
        args = ["train", "--config", TINY, *overrides]
    short = ["train.max_steps=20", "train.eval_every=20", "train.checkpoint_every=20",
             "eval.examples=16", "eval.final_examples=16", "eval.steps_sweep=[1]",
             "train.tensorboard=false", f"train.runs_dir={tmp_path}"]  # fmt: skip
    result = runner.invoke(app, [*args, *short])
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    result = runner.invoke(app, ["solve", "12+34", "--checkpoint", str(run), "--trace"])
    assert result.exit_code == 0, result.output
    assert result.output.count("halt p=") == 3 and "<- stops here" in result.output
    result = runner.invoke(app, ["solve", "12+34", "--checkpoint", str(run), "--json", "--trace"])
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert len(row["trace"]) == len(row["halt"]) == 3 and 1 <= row["steps"] <= 3


def test_resume_refuses_overrides(run_dir):
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "model.dim=8"])
    assert result.exit_code == 2 and "saved config" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "model.dimm=3"], "model.dimm: unknown field; allowed: kind, dim"),
        (["train", "--config", "nope.yaml"], "experiment file nope.yaml not found"),
        (["train", "train.device=cuda9"], "train.device: Input should be"),
        (["eval", "no/such/run"], "does not exist"),
        (["solve", "12+"], "it ends with '+'; a number must follow it"),
        (["solve", "12&3"], "cannot read '&3'"),
        (["solve", "7/2"], "not exact"),
        (["solve", "5/0"], "division by zero"),
        (["solve", "factor 1"], "factor needs a number in 2.."),
        (["solve", "12 to base 300"], "the target base must be 2..256"),
        (
            ["solve", "--base", "2", "102+1"],
            "'102' is not a number in base 2 (digits: 01, optionally a sign",
        ),
        (["solve"], "give problems"),
    ],
)
def test_bad_input_gives_a_clear_error(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
