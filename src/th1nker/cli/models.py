"""`th1nker models`: the shipped checkpoints, what they answer, how well, and how they were made."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from th1nker.cli.app import app, console
from th1nker.shipped import shipped_models


@app.command("models")
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model")] = False,
):
    """List the shipped checkpoints: name, the problems each answers, the exact-match accuracy
    its run measured (held-out test and ood problems) and the command that trained it. `th1nker
    solve` sends each problem to the first of them that covers it."""
    models = shipped_models()
    if as_json:
        for m in models:
            print(json.dumps({"name": m.name, "answers": m.summary, "test_accuracy":
                              m.test_accuracy, "ood_accuracy": m.ood_accuracy,
                              "command": m.command, "path": str(m.path)}))  # fmt: skip
        return
    table = Table(title="shipped models (th1nker solve picks one per problem)")
    for column in ("name", "answers", "test", "ood", "trained by"):
        table.add_column(column, overflow="fold")
    for m in models:
        table.add_row(
            m.name, escape(m.summary), f"{m.test_accuracy:.4f}", f"{m.ood_accuracy:.4f}",
            escape(m.command),
        )  # fmt: skip
    console.print(table)
