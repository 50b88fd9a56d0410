"""`th1nker vocab`, `th1nker scheme`, `th1nker data`: the task language from the shell."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from th1nker.cli.app import SchemeOption, app, console, fail, load_scheme_or_fail
from th1nker.tasks.generators import decimal
from th1nker.tasks.numbers import format_in_base
from th1nker.tasks.scheme import TASKS, SchemeError
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import TOKEN_IDS


class Split(StrEnum):
    train = "train"
    val = "val"
    test = "test"
    ood = "ood"


class Format(StrEnum):
    text = "text"
    jsonl = "jsonl"


OverridesArgument = Annotated[
    list[str] | None,
    typer.Argument(help="key=value overrides, e.g. max_length=128 generators.0.digits=[1,5]"),
]


@app.command()
def vocab(
    as_json: Annotated[bool, typer.Option("--json", help="Print {name: id} as JSON")] = False,
):
    """Print the token vocabulary."""
    if as_json:
        print(json.dumps(TOKEN_IDS))
        return
    specials = {name: token for name, token in TOKEN_IDS.items() if token >= 256}
    console.print(f"digits 0..255 have ids 0..255; {len(TOKEN_IDS)} tokens in all")
    for name, token in specials.items():
        console.print(f"{token:4d}  {name}", highlight=False)


@app.command()
def scheme(scheme_path: SchemeOption = None, overrides: OverridesArgument = None):
    """Print the resolved task scheme (defaults filled in, overrides applied) as YAML."""
    print(load_scheme_or_fail(scheme_path, overrides).to_yaml(), end="")


@app.command()
def data(
    scheme_path: SchemeOption = None,
    overrides: OverridesArgument = None,
    split: Annotated[Split, typer.Option(help="Which split to draw from")] = Split.train,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of problems")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the stream")] = 0,
    fmt: Annotated[Format, typer.Option("--format", help="text for people, jsonl for tools")] = (
        Format.text
    ),
    trace: Annotated[
        bool, typer.Option(help="Also print the algorithm's intermediate states (the trace)")
    ] = False,
):
    """Print problems drawn from a task scheme."""
    task_scheme = load_scheme_or_fail(scheme_path, overrides)
    stream = ProblemStream(task_scheme, split.value, batch_size=min(n, 1024), seed=seed)
    printed, index = 0, 0
    try:
        while printed < n:
            batch = stream.batch(index)
            index += 1
            rows = range(min(len(batch), n - printed))
            if fmt is Format.jsonl:
                _print_jsonl(batch, rows, split.value, trace)
            else:
                _print_text(batch, rows, trace)
            printed += len(rows)
    except SchemeError as error:
        raise fail(str(error)) from None
    except BrokenPipeError:
        sys.stderr.close()


def _print_jsonl(batch, rows, split: str, trace: bool) -> None:
    records = batch.records(split, trace)
    for i in rows:
        print(json.dumps(records[i]))


def _print_text(batch, rows, trace: bool) -> None:
    plain = batch.describe(decimal)
    in_base = batch.describe(format_in_base)
    states = batch.describe_trace(format_in_base) if trace else None
    for i in rows:
        task, base, out_base = TASKS[batch.task[i]], batch.base[i], batch.out_base[i]
        line = f"[cyan]{task:<12}[/] "
        if base != 256 or out_base != 256 or task in ("arithmetic", "factorize", "base_convert"):
            bases = f"{base}" if base == out_base else f"{base}->{out_base}"
            line += f"base {bases:<7} {in_base[i][0]} = [bold]{in_base[i][1]}[/]"
            if (base, out_base) != (10, 10):
                line += f"   [dim](decimal: {plain[i][0]} = {plain[i][1]})[/]"
        else:
            line += f"{plain[i][0]} -> [bold]{plain[i][1]}[/]"
        if states is not None:
            line += "\n    trace: " + " -> ".join(states[i])
        console.print(line, highlight=False)
