"""The shipped checkpoint solves what its card says, and docs list every model field."""

import re
from pathlib import Path

from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.models.config import ModelConfig, TRMConfig
from th1nker.solve import pretrained_path
from th1nker.train.checkpoint import load_checkpoint
from th1nker.train.evaluate import evaluate

ROOT = Path(__file__).parents[1]


def test_the_shipped_checkpoint_is_accurate_on_held_out_problems():
    config, model, _ = load_checkpoint(pretrained_path())
    result = evaluate(model, config.task, "test", 1000, 500, seed=7)
    assert result.accuracy >= 0.99, result.by["digits"]
    assert result.by["digits"]["10"][0] / result.by["digits"]["10"][1] >= 0.99


def test_solve_works_right_after_install():
    problems = ["9999999999+1", "1-10000000000", "0-0", "1234567890-1234567890", "5+7"]
    result = CliRunner().invoke(app, ["solve", *problems])
    assert result.exit_code == 0, result.output
    assert result.output.count("right") == len(problems), result.output


def test_docs_list_every_model_field_with_its_default():
    text = (ROOT / "docs" / "model.md").read_text()
    for name, field in ModelConfig.model_fields.items():
        assert re.search(rf"\| `{name}` \| {re.escape(str(field.default))} \|", text), name


def test_recursion_docs_list_every_trm_field_with_its_default():
    text = (ROOT / "docs" / "recursion.md").read_text()
    for name, field in TRMConfig.model_fields.items():
        default = "trm" if name == "kind" else str(field.default)
        assert re.search(rf"\| `{name}` \| {re.escape(default)} \|", text), name
