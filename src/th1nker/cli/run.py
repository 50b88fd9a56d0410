"""`th1nker train`, `th1nker eval`, `th1nker solve`: train a model, measure it, use it."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.syntax import Syntax
from rich.table import Table

from th1nker.cli.app import SchemeOption, app, console, errors, fail, load_scheme_or_fail
from th1nker.config_files import ConfigError, read_text_file
from th1nker.messages import shown
from th1nker.shipped import route
from th1nker.solve import (
    input_refusals,
    pretrained_path,
    reading_base,
    solve,
    uses_hub_trace,
)
from th1nker.tasks.notation import NotationError, encode_problems
from th1nker.train.checkpoint import load_checkpoint, load_checkpoint_config
from th1nker.train.device import pick_device
from th1nker.train.evaluate import evaluate
from th1nker.train.experiment import load_experiment
from th1nker.train.storage import RunLocked, StorageError, storage_error
from th1nker.train.trainer import TrainingDiverged, resume_training, start_training

MAX_FIXED_STEPS = 256  # eval --steps
MAX_EVAL_PROBLEMS = 1_000_000  # eval --n
MAX_BATCH = 10_000  # eval --batch-size
SOLVE_BATCH = 256  # problems solved at once by `solve`
MAX_CANDIDATES = 1024  # eval / solve --sample


SampleOption = Annotated[
    int,
    typer.Option(
        min=1, max=MAX_CANDIDATES,
        help="Verified search (factorizations): up to K candidates per problem, greedy first, "
        "then samples; the first whose factors are prime and multiply to the number is the "
        "answer (eval reports verified@K beside greedy top-1)",
    ),
]  # fmt: skip
TemperatureOption = Annotated[
    float, typer.Option(min=0.01, max=10.0, help="Sampling temperature of --sample")
]


class EvalSplit(StrEnum):
    val = "val"
    test = "test"
    ood = "ood"


def strict_json(value) -> str:
    """`value` as strict JSON: NaN and infinities (which JSON cannot hold) become null."""

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), allow_nan=False)


@app.command()
def train(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="key=value overrides, e.g. model.dim=32 train.max_steps=200"),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Experiment YAML (default: built-in add/sub)")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue this run from its last checkpoint")
    ] = None,
):
    """Train a model (default: a Th1nker on base-10 addition/subtraction up to 10 digits)."""
    try:
        if resume is not None:
            if config is not None or overrides:
                raise fail("--resume uses the run's saved config; drop --config and overrides")
            summary = resume_training(resume, console)
        else:
            experiment = load_experiment(config, overrides or [])
            console.print(Syntax(experiment.to_yaml(), "yaml", background_color="default"))
            summary = start_training(experiment, console)
    except (ConfigError, TrainingDiverged, StorageError, RunLocked) as error:
        raise fail(str(error)) from None
    except OSError as error:  # a write outside the checkpoints (report, plots, tensorboard)
        raise fail(str(storage_error(error, "write the run's files"))) from None
    except KeyboardInterrupt:
        console.print("interrupted: continue with `th1nker train --resume RUN_DIR`")
        raise typer.Exit(code=130) from None
    console.print_json(strict_json(summary))


CheckpointArgument = Annotated[
    Path, typer.Argument(help="A run directory (its latest checkpoint) or a checkpoint directory")
]


def _load(path: Path | None):
    try:
        return load_checkpoint(path or pretrained_path(), pick_device("auto"))
    except ConfigError as error:
        raise fail(str(error)) from None


def _progress(what: str) -> Progress:
    """A transient progress bar on stderr (when it is a terminal)."""
    return Progress(
        TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=errors, transient=True, disable=not errors.is_terminal,
    )  # fmt: skip


@app.command("eval")
def eval_command(
    run: CheckpointArgument,
    scheme_path: SchemeOption = None,
    split: Annotated[EvalSplit, typer.Option(help="Which split")] = EvalSplit.test,
    n: Annotated[
        int, typer.Option("--n", min=1, max=MAX_EVAL_PROBLEMS, help="Number of problems")
    ] = 2000,
    steps: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_FIXED_STEPS, help="Fixed thinking steps (default: per problem)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0)] = 1234,
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH)] = 500,
    sample: SampleOption = 1,
    temperature: TemperatureOption = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
):
    """Exact-match accuracy of a trained model, by task, base, digits and operands."""
    config, model, directory = _load(run)
    scheme = config.task if scheme_path is None else load_scheme_or_fail(scheme_path, None)
    try:
        model.config.check_task(scheme)
    except ValueError as error:
        raise fail(f"--scheme {scheme_path}: {error}") from None
    with _progress("eval") as progress:
        bar = progress.add_task("eval", total=n)
        try:
            result = evaluate(
                model, scheme, split.value, n, batch_size, seed, steps,
                progress=lambda done: progress.update(bar, completed=done),
                candidates=sample, temperature=temperature,
            )  # fmt: skip
        except ValueError as error:  # a task without a verifier, a family that cannot sample
            raise fail(f"--sample {sample}: {error}") from None
    if as_json:
        print(strict_json({"checkpoint": str(directory), **result.to_json()}))
        return
    console.print(
        f"{escape(str(directory))}: {split.value} exact match [bold]{result.accuracy:.4f}[/] "
        f"({result.correct}/{result.total}, mean thinking steps {result.mean_steps:.2f})"
    )
    if sample > 1:
        console.print(
            f"verified@{sample} [bold]{result.verified_accuracy:.4f}[/] ({result.verified}/"
            f"{result.total}: a candidate whose factors are prime and multiply to the number)"
        )
    for group, values in result.by.items():
        table = Table(title=f"by {group}", title_justify="left")
        columns = (group, "accuracy", *([f"verified@{sample}"] if sample > 1 else []), "problems")
        for column in columns:
            table.add_column(column, justify="right")
        for value, (correct, total) in values.items():
            verified = [f"{result.verified_by[group][value] / total:.4f}"] if sample > 1 else []
            table.add_row(value, f"{correct / total:.4f}", *verified, str(total))
        console.print(table)


@dataclasses.dataclass
class _Problem:
    """One problem of `solve`: where it came from (`FILE:LINE`, or None for an argument), its
    text, and why it cannot be solved (None: it can)."""

    where: str | None
    text: str
    error: str | None = None
    model: Path | None = None  # the checkpoint that answers it

    def message(self) -> str:
        return self.error if self.where is None else f"{self.where}: {self.error}"


def _read_problems(arguments: list[str], file: Path | None) -> list[_Problem]:
    problems = [_Problem(None, text) for text in arguments]
    if file is not None:
        try:
            text = read_text_file(file, "--file")
        except ConfigError as error:
            raise fail(str(error)) from None
        problems += [
            _Problem(f"{file}:{number}", line.strip())
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    return problems


def _looks_like_an_option(argument: str, base: int) -> bool:
    """`--json`-like, or `-x`-like and not a problem (`-ff+1` is one in base 16)."""
    if re.match(r"--[a-zA-Z]", argument):
        return True
    if not re.match(r"-[a-zA-Z]", argument):
        return False
    try:
        encode_problems([argument], base)
    except NotationError:
        return True
    return False


def _refuse_unreadable(problems: list[_Problem], base: int) -> None:
    """Set `error` on every problem that cannot be read in plain notation."""
    for problem in problems:
        try:
            encode_problems([problem.text], base)
        except NotationError as error:
            problem.error = str(error)


def _assign_models(problems: list[_Problem], base: int, checkpoint: Path | None) -> None:
    """Set `model` on every readable problem: `checkpoint`, or the shipped model that answers
    it (`th1nker.shipped.route`); set `error` where none can or where the problem is longer than
    its model reads (from the config alone: before any weights are loaded)."""
    for problem in (p for p in problems if p.error is None):
        try:
            problem.model = checkpoint or route(problem.text, base).path
        except NotationError as error:
            problem.error = str(error)
    for model in {p.model for p in problems if p.error is None}:
        mine = [p for p in problems if p.error is None and p.model == model]
        try:
            config, _ = load_checkpoint_config(model)
        except ConfigError as error:
            raise fail(str(error)) from None
        encoded = encode_problems([p.text for p in mine], base, reading_base(config.task, base))
        for problem, refusal in zip(mine, input_refusals(config.model, encoded), strict=True):
            if refusal is not None:
                problem.error = f"{shown(problem.text)}: {refusal}"


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@app.command("solve", context_settings={"ignore_unknown_options": True})
def solve_command(
    problems: Annotated[
        list[str] | None, typer.Argument(help="e.g. '123+456*7' 'factor 360' '255 to base 16'")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read problems from a file, one per line")
    ] = None,
    base: Annotated[
        int, typer.Option(min=2, max=36, help="Base the numbers are written in (2..36)")
    ] = 10,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Run or checkpoint (default: per problem, the shipped model for it)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per problem")] = False,
    trace: Annotated[bool, typer.Option(help="Show the answer after every thinking step")] = False,
    sample: SampleOption = 1,
    temperature: TemperatureOption = 1.0,
):
    """Solve problems with a trained model and check every answer exactly.

    Every readable problem is answered; each bad one is reported with its line (an error object
    with --json), and the exit code is 2 if any was bad."""
    if unknown := [p for p in problems or [] if _looks_like_an_option(p, base)]:
        raise fail(  # problems may start with '-' (-5+3), so click passes unknown options on
            f"no such option: {unknown[0]} (options: --file, --base, --checkpoint, --json, "
            "--trace, --sample, --temperature; see th1nker solve --help)"
        )
    todo = _read_problems(list(problems or []), file)
    if not todo and file is not None:
        raise fail(f"--file {file} holds no problems (every line is blank)")
    if not todo:
        raise fail("give problems as arguments or with --file, e.g. th1nker solve 12+34")
    _refuse_unreadable(todo, base)
    _assign_models(todo, base, checkpoint)
    good = [p for p in todo if p.error is None]
    solutions = {}
    with _progress("solve") as progress:
        bar = progress.add_task("solve", total=len(good))
        for path in dict.fromkeys(p.model for p in good):  # each model once, in problem order
            config, model, _ = _load(path)
            written_in, hub_trace = reading_base(config.task, base), uses_hub_trace(config.task)
            for chunk in _chunks([p for p in good if p.model == path], SOLVE_BATCH):
                texts = [p.text for p in chunk]
                try:
                    answered = solve(
                        model,
                        texts,
                        base,
                        trace,
                        sample,
                        temperature,
                        written_in=written_in,
                        hub_trace=hub_trace,
                    )
                except ValueError as error:  # a family that cannot sample
                    raise fail(f"--sample {sample}: {error}") from None
                for problem, solution in zip(chunk, answered, strict=True):
                    solutions[id(problem)] = solution
                progress.advance(bar, len(chunk))
    for problem in todo:
        if problem.error is not None:
            if as_json:
                print(strict_json({"line": problem.where, "problem": problem.text,
                                   "error": problem.error}))  # fmt: skip
            else:
                errors.print(f"[bold red]error:[/] {escape(problem.message())}", highlight=False)
            continue
        _print_solution(solutions[id(problem)], as_json, trace, problem.model, checkpoint)
    bad = len(todo) - len(good)
    if bad and as_json:
        raise fail(
            f"{bad} of {len(todo)} problems could not be solved (their error objects say why)"
        )
    if bad:
        raise typer.Exit(code=2)


def _print_solution(
    solution, as_json: bool, trace: bool, model: Path, checkpoint: Path | None
) -> None:
    """One solution; without --checkpoint it names the shipped model that gave it."""
    shipped = "" if checkpoint else model.name
    if as_json:
        record = dataclasses.asdict(solution) | ({"model": shipped} if shipped else {})
        if not trace:
            record.pop("trace")
            record.pop("halt")
        if solution.verified is None:
            for field in ("verified", "candidate", "candidates_tried"):
                record.pop(field)
        print(strict_json(record))
        return
    # the problem, the answers and the reasons are text from outside: escaped, never markup
    mark = "[green]right[/]" if solution.correct else f"[red]wrong[/] ({escape(solution.reason)})"
    answer = escape(solution.answer_in_base or "(malformed)")
    if solution.out_base != 10 and solution.answer:
        answer += f" [dim](decimal {escape(solution.answer)})[/]"
    search = ""
    if solution.verified is not None:
        search = (
            f", verified (candidate {solution.candidate} of {solution.candidates_tried})"
            if solution.verified
            else f", unverified after {solution.candidates_tried} candidates"
        )
    console.print(
        f"{escape(solution.problem)} = [bold]{answer}[/]  {mark}  [dim]{solution.steps} steps"
        + search
        + (f", {shipped}" if shipped else "")
        + "[/]",
        highlight=False,
    )
    if solution.trace and solution.candidate:
        console.print("    [dim](the steps of the greedy answer, candidate 0)[/]", highlight=False)
    for step, answer in enumerate(solution.trace or [], start=1):
        halt = solution.halt[step - 1]
        halting = "" if halt is None else f"  halt p={halt:.2f}"
        stopped = "  <- stops here" if step == solution.steps else ""
        console.print(
            f"    step {step}: {escape(answer or '(malformed)')}{halting}{stopped}",
            highlight=False,
        )
