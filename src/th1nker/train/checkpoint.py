"""Checkpoints: written atomically with checksums, found from a run directory, checked, loaded.

A checkpoint is a directory `RUN/checkpoints/step_NNNNNNN/` holding
- `model.safetensors`: the weights, as the family writes them (`Family.save_weights`; by default
  safetensors of the un-compiled module, tied tensors stored once);
- `config.yaml`: the resolved experiment that built the model;
- `trainer.pt` (training checkpoints only): optimiser, schedule, step, RNG states, log window;
- `checksums.json`: the SHA-256 of each of those files.

It is written into a hidden temporary directory, flushed to disk and renamed into place (atomic on
POSIX); only then is `RUN/checkpoints/latest` (the name of the newest) replaced, again by rename.
A run killed at any moment therefore keeps its last complete checkpoint, never half of one; a
write that fails (disk full, read-only) removes its temporary directory and leaves the older
checkpoints as they were. Every load checks the checksums first, so a truncated or bit-flipped
file is reported by name instead of loading nonsense; `intact_checkpoints` lets a resume fall back
to the newest checkpoint that passes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from th1nker.config_files import ConfigError
from th1nker.models.family import Family, build_model
from th1nker.train.experiment import ExperimentConfig, load_experiment
from th1nker.train.storage import (
    DamagedFile,
    replace_directory,
    storage_error,
    verify_checksums,
    write_atomically,
)

WEIGHTS, CONFIG, TRAINER, LATEST = "model.safetensors", "config.yaml", "trainer.pt", "latest"


def save_checkpoint(
    directory: Path,
    model: Family,
    config: ExperimentConfig,
    trainer_state: dict | None = None,
) -> Path:
    """Write a complete checkpoint at `directory` (replacing nothing until it is complete).
    Raises StorageError (and leaves no temporary files) when the disk refuses the write."""

    def fill(temporary: Path) -> None:
        model.save_weights(temporary / WEIGHTS)
        (temporary / CONFIG).write_text(config.to_yaml())
        if trainer_state is not None:
            torch.save(trainer_state, temporary / TRAINER)

    return replace_directory(directory, fill, f"write checkpoint {directory}")


def save_training_checkpoint(
    run_dir: Path, step: int, model: Family, config: ExperimentConfig, state: dict, keep: int
) -> Path:
    """Checkpoint `step` of a run, mark it latest, and delete all but the newest `keep`."""
    root = run_dir / "checkpoints"
    directory = save_checkpoint(root / f"step_{step:07d}", model, config, state)
    try:
        write_atomically(root / LATEST, directory.name)
        for old in sorted(root.glob("step_*"))[:-keep]:
            shutil.rmtree(old)
    except OSError as error:
        raise storage_error(error, f"mark {directory} as the latest checkpoint") from None
    return directory


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint directory for a run directory (its latest) or a checkpoint directory."""
    path = Path(path)
    if (path / WEIGHTS).is_file():
        return path
    latest = path / "checkpoints" / LATEST
    if latest.is_file():
        directory = path / "checkpoints" / latest.read_text(errors="replace").strip()
        if (directory / WEIGHTS).is_file():
            return directory
        raise ConfigError(f"{latest} names {directory.name}, which is missing or incomplete")
    if not path.exists():
        raise ConfigError(f"checkpoint or run directory {path} does not exist")
    raise ConfigError(
        f"{path} is neither a checkpoint (no {WEIGHTS}) nor a run with checkpoints/{LATEST}"
    )


def training_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoint directories, newest first."""
    return sorted((run_dir / "checkpoints").glob("step_*"), reverse=True)


def newest_intact_checkpoint(run_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """(the newest training checkpoint whose files all match their checksums, or None; the
    damaged ones newer than it, each with what is wrong, after moving each aside to
    `checkpoints/damaged-step_N` so that later checkpoints never mix with it)."""
    damaged = []
    for directory in training_checkpoints(run_dir):
        try:
            check_checkpoint(directory, training=True)
        except DamagedFile as error:
            aside = directory.with_name(f"damaged-{directory.name}")
            n = 1
            while aside.exists():
                aside, n = directory.with_name(f"damaged-{directory.name}-{n}"), n + 1
            os.replace(directory, aside)
            damaged.append((aside, str(error)))
            continue
        if damaged:
            write_atomically(run_dir / "checkpoints" / LATEST, directory.name)
        return directory, damaged
    return None, damaged


def check_checkpoint(directory: Path, training: bool = False) -> None:
    """Raise DamagedFile unless every file of the checkpoint matches its checksum."""
    verify_checksums(directory, (WEIGHTS, CONFIG, TRAINER) if training else (WEIGHTS, CONFIG))


def load_checkpoint_config(path: str | Path) -> tuple[ExperimentConfig, Path]:
    """(experiment config, checkpoint directory) of a run or checkpoint, after checking its
    files against their checksums (a damaged one is a ConfigError naming it)."""
    directory = find_checkpoint(path)
    try:
        check_checkpoint(directory)
    except DamagedFile as error:
        raise ConfigError(str(error)) from None
    return load_experiment(directory / CONFIG), directory


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu"):
    """(experiment config, model in eval mode, checkpoint directory) of a run or checkpoint.
    The files are checked against their checksums first; a damaged one is a ConfigError."""
    config, directory = load_checkpoint_config(path)
    model = build_model(config.model)
    try:
        missing, unexpected = model.load_weights(directory / WEIGHTS)
    except Exception as error:  # noqa: BLE001 (any reader's failure: the file is unusable)
        raise ConfigError(f"{directory / WEIGHTS} cannot be loaded: {error}") from None
    if missing or unexpected:
        raise ConfigError(
            f"{directory / WEIGHTS} does not match its config: missing {missing}, "
            f"unexpected {unexpected}"
        )
    return config, model.to(device).eval(), directory


def load_trainer_state(directory: Path) -> dict:
    """The optimiser/schedule/RNG state saved with a training checkpoint."""
    file = directory / TRAINER
    if not file.is_file():
        raise ConfigError(f"{directory} has no {TRAINER}: it is not a training checkpoint")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (any reader's failure: the file is unusable)
        raise ConfigError(f"{file} cannot be loaded: {error}") from None
