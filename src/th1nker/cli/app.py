"""The `th1nker` command line: the app, its consoles and shared options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from th1nker.tasks.scheme import SchemeError, TaskScheme, load_scheme

app = typer.Typer(
    help="th1nker: small neural networks that learn to compute exactly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(soft_wrap=True)
errors = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print `error: message` in red on stderr; the exit (code 2) to raise."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def load_scheme_or_fail(path: Path | None, overrides: list[str] | None) -> TaskScheme:
    try:
        return load_scheme(path, overrides or [])
    except SchemeError as error:
        raise fail(str(error)) from None


SchemeOption = Annotated[
    Path | None, typer.Option("--scheme", help="Task scheme YAML (default: built-in add/sub 10)")
]
