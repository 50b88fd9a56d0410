"""The shipped checkpoint solves what its card says, and docs list every model field."""

import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.models.config import ModelConfig, TRMConfig
from th1nker.shipped import ShippedModel, shipped_models
from th1nker.solve import pretrained_path
from th1nker.tasks.notation import parse_problem
from th1nker.tasks.scheme import load_scheme
from th1nker.train.checkpoint import load_checkpoint
from th1nker.train.evaluate import evaluate

ROOT = Path(__file__).parents[1]


def test_the_default_checkpoint_is_accurate_on_held_out_problems():
    config, model, _ = load_checkpoint(pretrained_path())
    result = evaluate(model, config.task, "test", 1000, 500, seed=7)
    assert result.accuracy >= 0.99, result.by["digits"]
    assert result.by["digits"]["10"][0] / result.by["digits"]["10"][1] >= 0.99


@pytest.mark.parametrize("shipped", shipped_models(), ids=lambda m: m.name)
def test_every_card_states_the_accuracy_its_checkpoint_has(shipped):
    """500 fresh test problems (another evaluation seed than the run's) agree with the card
    within three standard errors."""
    config, model, _ = load_checkpoint(shipped.path)
    n = 500
    result = evaluate(model, config.task, "test", n, 250, seed=7)
    p = shipped.test_accuracy
    assert abs(result.accuracy - p) <= 3 * math.sqrt(p * (1 - p) / n) + 0.005, result.by


def test_solve_works_right_after_install():
    problems = {  # problem: the shipped model it goes to
        "9999999999+1": "add_sub_signed",
        "1-10000000000": "add_sub_signed",
        "0-0": "add_sub_signed",
        "-5+-43": "add_sub_signed",
        "-999999999999-1": "add_sub_signed",
        "1234*5678": "multiplication_4",
        "3*-2": "multiplication_signed",
        "12+34*5-6": "expressions",
    }
    result = CliRunner().invoke(app, ["solve", *problems, "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["problem"] for r in rows] == list(problems)
    assert [r["model"] for r in rows] == list(problems.values())
    assert all(r["correct"] for r in rows), rows


def test_docs_list_every_model_field_with_its_default():
    text = (ROOT / "docs" / "model.md").read_text()
    for name, field in ModelConfig.model_fields.items():
        assert re.search(rf"\| `{name}` \| {re.escape(str(field.default))} \|", text), name


def test_recursion_docs_list_every_trm_field_with_its_default():
    text = (ROOT / "docs" / "recursion.md").read_text()
    for name, field in TRMConfig.model_fields.items():
        default = "trm" if name == "kind" else str(field.default)
        assert re.search(rf"\| `{name}` \| {re.escape(default)} \|", text), name


def _model(name: str, overrides: list[str]) -> ShippedModel:
    return ShippedModel(name, Path(name), name, "", 1.0, 0.0, load_scheme(None, overrides))


def test_a_problem_goes_to_the_model_trained_on_it():
    plain = _model("plain", [])  # a+b, a-b of non-negative 1..10-digit integers, base 10
    signed = _model("signed", ["generators.0.negative=0.5", "generators.0.decimals=0.5"])
    times = _model("times", ["generators.0.operations='*'", "generators.0.digits=[1,4]"])
    cases = {  # problem: (fit of plain, signed, times)
        "5+7": (2, 2, 0),
        "12345678901+1": (1, 1, 0),  # its sizes lie outside: answered, not refused
        "-5+-43": (0, 2, 0),
        "1.25-4": (0, 2, 0),
        "1234*5678": (0, 0, 2),
        "12345*6": (0, 0, 1),
        "3*-2": (0, 0, 0),
        "1+2*3": (0, 0, 0),
        "factor 360": (0, 0, 0),
    }
    for problem, fits in cases.items():
        parsed, _ = parse_problem(problem)
        assert tuple(m.fit(parsed, 10) for m in (plain, signed, times)) == fits, problem
    # another base: read in the model's own (ff = 255), after the models trained on base 16
    assert plain.fit(parse_problem("ff+1", 16)[0], 16) == 1.75


def test_factorizations_and_conversions_go_by_the_number_and_the_bases():
    factor = _model("factor", ["generators=[{type: factorize, factors: [1, 15], "
                               "max_number: 65535, sampling: log_uniform}]"])  # fmt: skip
    convert = _model("convert", ["generators=[{type: base_convert, digits: [1, 9]}]",
                                 "bases.values=[2,4,10,16,256]"])  # fmt: skip
    cases = {  # problem: (fit of factor, convert)
        "factor 360": (2, 0),
        "factor 65535": (2, 0),
        "factor 65536": (1, 0),  # beyond the trained numbers: answered, not refused
        "255 to base 16": (0, 2),
        "255 to base 10": (0, 0),  # the same base in and out: never trained
        "255 to base 8": (0, 0),  # a target base it never wrote
        "1234567890 to base 2": (0, 1),
        "1+2": (0, 0),
    }
    for problem, fits in cases.items():
        parsed, out_base = parse_problem(problem)
        assert tuple(m.fit(parsed, 10, out_base) for m in (factor, convert)) == fits, problem
    assert convert.fit(*parse_problem("ff to base 2", 16)[:1], 16, 2) == 2


def test_models_lists_every_shipped_checkpoint_with_its_card():
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    shipped = {p.name for p in pretrained_path().parent.iterdir() if (p / "card.json").is_file()}
    assert [r["name"] for r in rows] == [m.name for m in shipped_models()]
    assert {r["name"] for r in rows} == shipped and "add_sub_10" in shipped
    for row in rows:
        assert row["command"].startswith("th1nker train") and 0 <= row["test_accuracy"] <= 1
    table = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert all(name in table.stdout for name in shipped)


def test_solve_converts_through_hub_states_written_in_their_own_bases():
    result = CliRunner().invoke(app, ["solve", "255 to base 2", "--trace"])
    assert result.exit_code == 0, result.output
    assert "255 to base 2 = 11111111 (decimal 255)  right" in result.output
    # the Horner states 2, 2*10+5, 25*10+5 written in hex (2, 19, ff), shown as decimal values
    assert re.findall(r"step \d: (\d+)", result.output) == ["2", "25", "255", "255"]
    assert "base_convert" in result.output


def test_solve_refuses_what_no_shipped_model_answers_and_names_them():
    result = CliRunner().invoke(app, ["solve", "255 to base 8", "1+1"])
    assert result.exit_code == 2
    assert (
        "no shipped model answers base_convert" in result.output and "add_sub_10" in result.output
    )
    assert "1+1 = 2  right" in result.output
