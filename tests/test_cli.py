import json

from typer.testing import CliRunner

from th1nker.cli import app

runner = CliRunner()


def test_data_jsonl_has_the_documented_fields():
    result = runner.invoke(
        app, ["data", "--scheme", "configs/tasks/mixed.yaml", "--n", "30", "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 30
    for row in rows:
        assert {
            "task",
            "base",
            "out_base",
            "problem",
            "answer",
            "input_ids",
            "target_ids",
        } <= row.keys()
        assert row["task"] in {"arithmetic", "factorize", "base_convert"}


def test_data_text_shows_problems_in_their_base_and_in_decimal():
    result = runner.invoke(app, ["data", "--n", "3", "output_base.values=[16]", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("base 10->16") == 3 and result.output.count("decimal:") == 3


def test_data_is_reproducible_and_respects_split_and_n():
    args = ["data", "--n", "1500", "--format", "jsonl", "--split", "ood", "--seed", "7"]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.output == second.output and len(first.output.splitlines()) == 1500


def test_bad_scheme_is_a_clear_error_with_exit_code_2():
    result = runner.invoke(app, ["data", "bases.values=[1]"])
    assert result.exit_code == 2
    assert "bases.values.0: base 1 is outside the allowed bases 2..256" in result.output
    assert "Traceback" not in result.output


def test_scheme_prints_resolved_yaml():
    result = runner.invoke(app, ["scheme", "max_length=99"])
    assert result.exit_code == 0 and "max_length: 99" in result.output
