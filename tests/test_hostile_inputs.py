"""Malformed and hostile input, by kind: every one gets exit code 2 and a single `error:` line on
stderr that names the input and what is allowed; no traceback; nothing on disk changes except what
the message says. (Faults while training are in test_faults.py.)"""

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.config_files import ConfigError, read_yaml
from th1nker.tasks.notation import NotationError, parse_problem
from th1nker.tasks.scheme import SchemeError, load_scheme
from th1nker.train.checkpoint import WEIGHTS, find_checkpoint
from th1nker.train.storage import LOCK

runner = CliRunner()
CONFIGS = Path(__file__).parents[1] / "configs" / "experiments"
TINY = str(CONFIGS / "tiny.yaml")
QUICK = ["eval.plots=false", "eval.final_examples=16", "eval.steps_sweep=[2]"]


def snapshot(root: Path | None) -> dict[str, str]:
    """{path: sha256} of every file under `root` (the run lock's note aside)."""
    if root is None:
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOCK
    }


def refused(args: list[str], *fragments: str, watch: Path | None = None) -> str:
    """Run the CLI; assert exit 2, one `error:` line naming every fragment, no traceback, and
    no change under `watch`. Returns the line."""
    before = snapshot(watch)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert snapshot(watch) == before
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs") / "odd [/] [bold]name"  # not rich markup
    result = runner.invoke(app, ["train", "--config", TINY, *QUICK, f"train.runs_dir={runs}"])
    assert result.exit_code == 0, result.output
    (run,) = runs.iterdir()
    assert f"run directory: {run}" in result.output
    return run


@pytest.fixture
def run_copy(run, tmp_path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


# --- 1. huge numbers and problems larger than the model reads ------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["solve", "9" * 10_000 + "+1"], ["10000 digits in base 10", "at most 4000 decimal"]),
        (["solve", "99999^1000"], ["'99999^1000'", "more than 4000 decimal digits"]),
        (["solve", "9" * 4000 + "^1000"], ["more than 4000 decimal digits"]),
        (["solve", "2^1001"], ["exponents go up to 1000"]),
        (["solve", "9" * 130 + "+1"], ["135 input tokens", "at most 128 (model.input_cache_size)"]),
        (["solve", "+".join(["1"] * 100)], ["100 operands; at most 64"]),
        (["solve", "factor " + "9" * 20], ["factor needs a number in 2..1000000000000"]),
        (["solve", "9" * 5000 + " to base 2"], ["5000 digits in base 10"]),
        (["solve", "255 to base 100000"], ["the target base must be 2..256"]),
        (["solve", "--base", "37", "1+1"], ["'--base'", "36"]),
        (["scheme", "generators.0.operations='*'", "generators.0.operands=[3,3]",
          "generators.0.digits=2000"], ["results could reach 6000 decimal digits"]),
        (["data", "generators.0.digits=[5000,5000]"], ["digits [5000, 5000]", "[1, 2000]"]),
        (["scheme", "max_length=10000000"], ["max_length", "1000000"]),
        (["scheme", "generators.0.max_number=" + "9" * 5000], ["more than 4300 digits"]),
        (["scheme", "generators.0.operands=[2,100]"], ["operands [2, 100]", "[1, 64]"]),
        (["data", "--n", "0"], ["'--n'"]),
    ],
)  # fmt: skip
def test_huge_numbers_and_sizes_are_refused_up_front(args, fragments):
    line = refused(args, *fragments)
    assert len(line) < 400  # a 10,000-digit problem is shown shortened


@pytest.mark.parametrize(
    ("option", "fragments"),
    [
        (["--steps", "100000"], ["'--steps'", "256"]),
        (["--n", "100000000"], ["'--n'", "1000000"]),
        (["--batch-size", "1000000"], ["'--batch-size'", "10000"]),
    ],
)
def test_unbounded_evaluations_are_refused(run, option, fragments):
    refused(["eval", str(run), *option], *fragments, watch=run)


# --- 2. damaged and unreadable files --------------------------------------------------------


def _empty(file: Path) -> None:
    file.write_bytes(b"")


def _bad_header(file: Path) -> None:
    file.write_bytes(b"\xff" * 8 + file.read_bytes()[8:])


def _garbage_in_the_data(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[-100:-60] = os.urandom(40)
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_empty, _bad_header, _garbage_in_the_data])
def test_a_damaged_weights_file_is_named_by_eval_and_solve(run_copy, damage):
    weights = find_checkpoint(run_copy) / WEIGHTS
    damage(weights)
    message = f"{weights} is damaged"
    refused(["eval", str(run_copy), "--n", "4"], message, watch=run_copy)
    refused(["solve", "1+2", "--checkpoint", str(run_copy)], message, watch=run_copy)


def test_checkpoint_bookkeeping_damage_is_named(run_copy):
    checkpoint = find_checkpoint(run_copy)
    (checkpoint / "checksums.json").unlink()
    refused(["eval", str(run_copy)], "checksums.json is missing", watch=run_copy)
    (run_copy / "checkpoints" / "latest").write_bytes(b"\x89\xff\x00garbage")
    refused(["eval", str(run_copy)], "latest names", "missing or incomplete", watch=run_copy)


def test_a_run_with_no_intact_checkpoint_is_refused_and_says_where_they_went(run_copy):
    for checkpoint in (run_copy / "checkpoints").glob("step_*"):
        _empty(checkpoint / WEIGHTS)
    result = runner.invoke(app, ["train", "--resume", str(run_copy)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert "has no intact checkpoint left to resume from" in line
    assert "moved to" in result.stdout and "damaged-step_" in result.stdout
    assert not list((run_copy / "checkpoints").glob("step_*"))


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff"), ["is not UTF-8 text", "byte"]),
        (lambda p: p.mkdir(), ["is a directory, not a file"]),
        (lambda p: None, ["not found"]),
    ],
    ids=["binary", "directory", "missing"],
)
def test_unreadable_files_are_named(tmp_path, make, fragments):
    path = tmp_path / "input.txt"
    make(path)
    refused(["solve", "--file", str(path)], f"--file {path}", *fragments, watch=tmp_path)
    refused(["train", "--config", str(path)], f"experiment file {path}", *fragments)
    refused(["data", "--scheme", str(path)], f"scheme file {path}", *fragments)


def test_an_empty_problem_file_is_named(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    refused(["solve", "--file", str(empty)], f"--file {empty} holds no problems")
    refused(["solve"], "give problems as arguments or with --file")


def test_a_run_whose_config_is_unreadable_is_refused(run_copy):
    (run_copy / "config.yaml").write_bytes(b"\x00\xff\xfe")
    refused(["train", "--resume", str(run_copy)], "config.yaml is not UTF-8 text")
    refused(["train", "--resume", str(run_copy / "metrics.jsonl")], "is not a run directory")


def test_a_damaged_metrics_line_in_the_middle_is_named(run_copy):
    metrics = run_copy / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([lines[0], '{"kind": "tr', *lines[1:]]) + "\n")
    refused(["train", "--resume", str(run_copy)], "metrics.jsonl, line 2: not a metrics record")


# --- 3. where the run cannot be written -------------------------------------------------------


def test_a_runs_dir_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    refused(
        ["train", "--config", TINY, f"train.runs_dir={blocker / 'runs'}"],
        "cannot create the run directory (train.runs_dir)",
        str(blocker),
        watch=tmp_path,
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_runs_dir_is_one_line(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o500)
    refused(
        ["train", "--config", TINY, f"train.runs_dir={runs}"],
        "no permission to write there",
        watch=tmp_path,
    )


def test_a_read_only_file_system_is_one_line(tmp_path, monkeypatch):
    import errno

    from th1nker.train import trainer

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(trainer, "write_atomically", read_only)
    refused(
        ["train", "--config", TINY, f"train.runs_dir={tmp_path}"],
        "config.yaml): the file system is read-only",
    )


# --- 5. messages that must be true; 6. strict JSON; 7. one bad line among many ---------------


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        ("", "the problem is empty"),
        ("   ", "the problem is empty"),
        ("1++2", "'+' is followed by '+'; a number must come between"),
        ("--5+3", "the sign '-' is followed by '-'"),
        ("-2^2", "a power of a negative number is ambiguous"),
        ("*3", "it starts with '*'"),
        ("12 34", "'12' and '34' need an operator between them"),
        ("1+2=", "cannot read '='"),
        ("(1+2)", "cannot read '(1+2)'"),
        ("1/0", "division by zero"),
        ("0x1f+1", "'0x1f' is not a number in base 10"),
        ("1,000+1", "cannot read ',000+1'"),
        ("factor -7", "'-7' is not a number"),
        ("７+1", "cannot read '７+1'"),  # a full-width digit
    ],
)
def test_bad_problems_get_the_right_reason(problem, reason):
    refused(["solve", "--", problem], reason)


def _strict(line: str):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_every_json_output_is_strict_json(run):
    result = runner.invoke(app, ["solve", "12+34", "--checkpoint", str(run), "--json", "--trace"])
    assert result.exit_code == 0, result.output
    (row,) = [_strict(line) for line in result.stdout.splitlines()]
    assert row["halt"] == [None, None]  # no halting head: null, not NaN
    result = runner.invoke(app, ["eval", str(run), "--n", "8", "--json"])
    assert result.exit_code == 0 and _strict(result.stdout)["total"] == 8


def test_one_bad_line_does_not_sink_the_batch(run, tmp_path):
    good = [f"{a}+{b}" for a in range(7) for b in range(7)]  # 49 problems
    lines = [*good[:10], "1++2", *good[10:30], "", "12&3", *good[30:], "9" * 30 + "+1"]
    problems = tmp_path / "problems.txt"
    problems.write_text("\n".join(lines) + "\n")
    args = ["solve", "--file", str(problems), "--checkpoint", str(run)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.stdout.splitlines()) == len(good)
    errors = result.stderr.strip().splitlines()
    assert [e.split(": ")[1] for e in errors] == [
        f"{problems}:11", f"{problems}:33", f"{problems}:{len(lines)}"
    ]  # fmt: skip
    assert "reads at most 16 (model.input_cache_size)" in errors[-1]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 2
    rows = [_strict(line) for line in result.stdout.splitlines()]
    assert [r.get("problem") for r in rows] == [line for line in lines if line]
    bad = [r for r in rows if "error" in r]
    assert [r["line"] for r in bad] == [
        f"{problems}:11",
        f"{problems}:33",
        f"{problems}:{len(lines)}",
    ]
    assert all(r["correct"] == (r["answer"] == r["expected"]) for r in rows if "error" not in r)
    (summary,) = result.stderr.strip().splitlines()
    assert "3 of 52 problems could not be solved" in summary


def test_answers_and_reasons_are_printed_as_text_not_markup(run, monkeypatch):
    from th1nker.cli import run as run_module

    def odd(model, texts, base, trace, *args, **kwargs):
        solutions = real_solve(model, texts, base, trace, *args, **kwargs)
        for solution in solutions:
            solution.answer_in_base, solution.reason = "[/ / /]", "malformed output [/ /] [bold]"
            solution.trace = ["[/]"] * len(solution.trace or [])
        return solutions

    real_solve = run_module.solve
    monkeypatch.setattr(run_module, "solve", odd)
    result = runner.invoke(app, ["solve", "1+2", "--checkpoint", str(run), "--trace"])
    assert result.exit_code == 0, result.output
    assert "= [/ / /]" in result.stdout and "malformed output [/ /] [bold]" in result.stdout
    assert "step 1: [/]" in result.stdout


def test_a_plugin_that_fails_to_import_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "bad_syntax_plugin.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    refused(["train", "imports=[broken_plugin]"], "importing broken_plugin failed: RuntimeError")
    refused(["train", "imports=[bad_syntax_plugin]"], "SyntaxError", "line 1")
    refused(["train", "imports=[no_such_plugin]"], "cannot import no_such_plugin")


def test_usage_errors_are_one_line():
    refused(["solve", "--bogus"], "no such option: --bogus", "options: --file")
    refused(["eval"], "Missing argument")
    refused(["nocommand"], "No such command 'nocommand'")
    refused(["eval", "x", "--n", "many"], "'--n'")
    refused(["train", "-5+3"], "No such option: -5")
    refused(["solve", "-x", "1+1"], "no such option: -x")  # -5+3 is a problem, -x an option


# --- fuzz: no input reaches a traceback -----------------------------------------------------

PROBLEM_TEXT = st.text(alphabet="0123456789abfz+-*/%^ ().,=factorizetobase\t", max_size=40)


@settings(max_examples=400, deadline=None)
@given(text=PROBLEM_TEXT, base=st.sampled_from([2, 10, 16, 36]))
def test_any_text_is_a_problem_or_a_notation_error(text, base):
    try:
        parse_problem(text, base)
    except NotationError as error:
        assert "\n" not in str(error)


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(["max_length", "generators.0.digits", "generators.0.operations",
                         "generators.0.operands", "bases.values", "splits.val", "name", "x.y",
                         "generators.0", "generators", "output_base"]),
    value=st.text(alphabet="[]{}:,'\"*&!|0123456789-+. abc", max_size=16),
)  # fmt: skip
def test_any_override_is_a_scheme_or_a_scheme_error(key, value):
    with contextlib.suppress(SchemeError):
        load_scheme(None, [f"{key}={value}"])


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_file_is_yaml_or_a_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("yaml") / "config.yaml"
    path.write_bytes(data)
    try:
        read_yaml(path, {}, [], "scheme")
    except ConfigError as error:
        assert str(path) in str(error)
