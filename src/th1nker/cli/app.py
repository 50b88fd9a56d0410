"""The `th1nker` command line: the app, its consoles and shared options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from th1nker.tasks.scheme import SchemeError, TaskScheme, load_scheme

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


class OneLineErrors(typer.core.TyperGroup):
    """The command group, with every usage error (bad option value, unknown option, missing
    argument) printed as one `error:` line on stderr, exit code 2, like th1nker's own errors."""

    def main(self, args=None, standalone_mode: bool = True, **extra):
        args = sys.argv[1:] if args is None else list(args)
        try:
            code = super().main(args, standalone_mode=False, **extra)
        except typer.TyperException as error:  # click's ClickException and its kin
            command = error.ctx.command_path if getattr(error, "ctx", None) else "th1nker"
            if message := error.format_message():  # none: the help was asked for by no args
                errors.print(
                    f"[bold red]error:[/] {escape(message)} (see {command} --help)",
                    highlight=False,
                    soft_wrap=True,
                )
            code = 2
        except typer.Abort:
            errors.print("[bold red]error:[/] aborted", highlight=False)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    help="th1nker: small neural networks that learn to compute exactly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


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
