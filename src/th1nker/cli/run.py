"""`th1nker train`, `th1nker eval`, `th1nker solve`: train a model, measure it, use it."""

from __future__ import annotations

import dataclasses
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.syntax import Syntax
from rich.table import Table

from th1nker.cli.app import SchemeOption, app, console, fail, load_scheme_or_fail
from th1nker.config_files import ConfigError
from th1nker.solve import pretrained_path, solve
from th1nker.tasks.notation import NotationError, encode_problems
from th1nker.train.checkpoint import load_checkpoint
from th1nker.train.device import pick_device
from th1nker.train.evaluate import evaluate
from th1nker.train.experiment import load_experiment
from th1nker.train.trainer import TrainingDiverged, resume_training, start_training


class EvalSplit(StrEnum):
    val = "val"
    test = "test"
    ood = "ood"


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
    except (ConfigError, TrainingDiverged) as error:
        raise fail(str(error)) from None
    except KeyboardInterrupt:
        console.print("interrupted: continue with `th1nker train --resume RUN_DIR`")
        raise typer.Exit(code=130) from None
    console.print_json(json.dumps(summary))


CheckpointArgument = Annotated[
    Path, typer.Argument(help="A run directory (its latest checkpoint) or a checkpoint directory")
]


def _load(path: Path | None):
    try:
        return load_checkpoint(path or pretrained_path(), pick_device("auto"))
    except ConfigError as error:
        raise fail(str(error)) from None


@app.command("eval")
def eval_command(
    run: CheckpointArgument,
    scheme_path: SchemeOption = None,
    split: Annotated[EvalSplit, typer.Option(help="Which split")] = EvalSplit.test,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of problems")] = 2000,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Fixed thinking steps (default: per problem)")
    ] = None,
    seed: Annotated[int, typer.Option(min=0)] = 1234,
    batch_size: Annotated[int, typer.Option(min=1)] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
):
    """Exact-match accuracy of a trained model, by task, base, digits and operands."""
    config, model, directory = _load(run)
    scheme = config.task if scheme_path is None else load_scheme_or_fail(scheme_path, None)
    try:
        result = evaluate(model, scheme, split.value, n, batch_size, seed, steps)
    except (ConfigError, ValueError) as error:
        raise fail(str(error)) from None
    if as_json:
        print(json.dumps({"checkpoint": str(directory), **result.to_json()}))
        return
    console.print(
        f"{directory}: {split.value} exact match [bold]{result.accuracy:.4f}[/] "
        f"({result.correct}/{result.total}, mean thinking steps {result.mean_steps:.2f})"
    )
    for group, values in result.by.items():
        table = Table(title=f"by {group}", title_justify="left")
        for column in (group, "accuracy", "problems"):
            table.add_column(column, justify="right")
        for value, (correct, total) in values.items():
            table.add_row(value, f"{correct / total:.4f}", str(total))
        console.print(table)


@app.command("solve")
def solve_command(
    problems: Annotated[
        list[str] | None, typer.Argument(help="e.g. '123+456*7' 'factor 360' '255 to base 16'")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read problems from a file, one per line")
    ] = None,
    base: Annotated[int, typer.Option(help="Base the numbers are written in (2..36)")] = 10,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Run or checkpoint (default: the shipped model)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per problem")] = False,
    trace: Annotated[bool, typer.Option(help="Show the answer after every thinking step")] = False,
):
    """Solve problems with a trained model and check every answer exactly."""
    texts = list(problems or [])
    if file is not None:
        if not file.is_file():
            raise fail(f"--file {file} not found")
        texts += [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if not texts:
        raise fail("give problems as arguments or with --file, e.g. th1nker solve 12+34")
    try:
        encode_problems(texts, base)  # refuse unreadable problems before loading a model
    except NotationError as error:
        raise fail(str(error)) from None
    _, model, _ = _load(checkpoint)
    solutions = solve(model, texts, base, trace)
    for solution in solutions:
        if as_json:
            record = dataclasses.asdict(solution)
            if not trace:
                record.pop("trace")
                record.pop("halt")
            print(json.dumps(record))
            continue
        mark = "[green]right[/]" if solution.correct else f"[red]wrong[/] ({solution.reason})"
        shown = solution.answer_in_base or "(malformed)"
        if solution.out_base != 10 and solution.answer:
            shown += f" [dim](decimal {solution.answer})[/]"
        console.print(
            f"{solution.problem} = [bold]{shown}[/]  {mark}  [dim]{solution.steps} steps[/]",
            highlight=False,
        )
        for step, answer in enumerate(solution.trace or [], start=1):
            halt = solution.halt[step - 1]
            halting = "" if math.isnan(halt) else f"  halt p={halt:.2f}"
            stopped = "  <- stops here" if step == solution.steps else ""
            console.print(
                f"    step {step}: {answer or '(malformed)'}{halting}{stopped}", highlight=False
            )
