"""`th1nker compile`: a RASP program (model.kind: compiled) into a checkpoint of transformer
weights, which `th1nker eval` and `th1nker solve` run like a trained one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from th1nker.cli.app import app, console, fail
from th1nker.config_files import ConfigError
from th1nker.models.family import build_model
from th1nker.rasp.figure import plot_layout
from th1nker.train.checkpoint import save_checkpoint
from th1nker.train.experiment import load_experiment
from th1nker.train.storage import StorageError


@app.command("compile")
def compile_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            help="Experiment YAML with model.kind: compiled, e.g. "
            "configs/experiments/compiled_addition.yaml",
        ),
    ],  # fmt: skip
    out: Annotated[Path, typer.Option("--out", help="The checkpoint directory to write")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. model.max_seq_len=32")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Draw the residual stream's use (png or svg)")
    ] = None,
):
    """Compile the experiment's RASP program, print its residual layout and layers, and write
    the checkpoint (config + safetensors): `th1nker solve 123+456 --checkpoint OUT`."""
    try:
        experiment = load_experiment(config, overrides or [])
        if experiment.model.kind != "compiled":
            raise ConfigError(
                f"model.kind is {experiment.model.kind!r}; th1nker compile needs model.kind: "
                "compiled (th1nker train trains the others)"
            )
        model = build_model(experiment.model)
        console.print(escape(model.compiled.describe()))
        save_checkpoint(out, model, experiment)
        if plot is not None:
            plot_layout(model.compiled, plot)
    except (ConfigError, StorageError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(f"wrote {out}: th1nker eval {out} / th1nker solve PROBLEM --checkpoint {out}")
