"""`th1nker compile`: a RASP program into transformer weights.

th1nker compile --config E.yaml --out DIR          model.kind: compiled -> a checkpoint that
                                                   `th1nker eval` / `solve` run, `train` tunes
th1nker compile --library sort --max-seq-len 8 --out DIR
                                                   a library program -> a saved program
                                                   (rasp/saving.py: th1nker.rasp.load_compiled)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from th1nker.cli.app import app, console, fail
from th1nker.config_files import ConfigError
from th1nker.models.family import build_model
from th1nker.rasp.compiler import compile_program
from th1nker.rasp.figure import plot_layout
from th1nker.rasp.library import PROGRAMS
from th1nker.rasp.saving import save_compiled
from th1nker.rasp.values import CompileError
from th1nker.train.checkpoint import save_checkpoint
from th1nker.train.experiment import load_experiment
from th1nker.train.storage import StorageError


@app.command("compile")
def compile_command(
    out: Annotated[Path, typer.Option("--out", help="The directory to write")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Experiment YAML with model.kind: compiled, e.g. "
            "configs/experiments/compiled_addition.yaml",
        ),
    ] = None,
    library: Annotated[
        str | None,
        typer.Option("--library", help=f"A library program instead: {', '.join(PROGRAMS)}"),
    ] = None,
    max_seq_len: Annotated[
        int, typer.Option("--max-seq-len", min=1, help="Longest input (with --library)")
    ] = 10,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. model.max_seq_len=32")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Draw the residual stream's use (png or svg)")
    ] = None,
):
    """Compile a RASP program, print its residual layout and layers, and write it: the
    experiment's (--config: a checkpoint, `th1nker solve 123+456 --checkpoint OUT`) or a
    library program (--library: a saved program, `th1nker.rasp.load_compiled(OUT)`)."""
    if (config is None) == (library is None):
        raise fail("give one of --config FILE (model.kind: compiled) and --library NAME")
    try:
        if library is not None:
            compiled = _library_program(library, max_seq_len, overrides)
            save_compiled(compiled, out)
            done = f"wrote {out}: th1nker.rasp.load_compiled({str(out)!r}).run(inputs)"
        else:
            compiled = _experiment_program(config, out, overrides)  # type: ignore[arg-type]
            done = f"wrote {out}: th1nker eval {out} / th1nker solve PROBLEM --checkpoint {out}"
        console.print(escape(compiled.describe()))
        if plot is not None:
            plot_layout(compiled, plot)
    except (ConfigError, StorageError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(done)


def _library_program(name: str, max_seq_len: int, overrides: list[str] | None):
    """The library program `name` compiled for inputs of 1..max_seq_len tokens."""
    if overrides:
        raise ConfigError(f"--library takes no key=value overrides, got {overrides}")
    if name not in PROGRAMS:
        raise ConfigError(f"--library {name!r}: the library has {', '.join(PROGRAMS)}")
    entry = PROGRAMS[name]
    try:
        return compile_program(entry.make(max_seq_len), entry.vocab, max_seq_len, entry.causal)
    except CompileError as error:
        raise ConfigError(f"--library {name} at --max-seq-len {max_seq_len}: {error}") from None


def _experiment_program(config: Path, out: Path, overrides: list[str] | None):
    """The experiment's compiled model, its checkpoint written to `out`."""
    experiment = load_experiment(config, overrides or [])
    if experiment.model.kind != "compiled":
        raise ConfigError(
            f"model.kind is {experiment.model.kind!r}; th1nker compile needs model.kind: "
            "compiled (th1nker train trains the others)"
        )
    model = build_model(experiment.model)
    save_checkpoint(out, model, experiment)
    return model.compiled
