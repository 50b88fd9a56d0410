"""The `th1nker` command line (typer): one module per group of commands."""

from th1nker.cli import compile, data, models, run  # noqa: F401  (register their commands)
from th1nker.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
