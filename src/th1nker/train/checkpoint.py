"""Checkpoints: written atomically, found from a run directory, loaded into a model.

A checkpoint is a directory `RUN/checkpoints/step_NNNNNNN/` holding
- `model.safetensors`: the weights, as the family writes them (`Family.save_weights`; by default
  safetensors of the un-compiled module, tied tensors stored once);
- `config.yaml`: the resolved experiment that built the model;
- `trainer.pt` (training checkpoints only): optimiser, schedule, step, RNG states.

It is written into a hidden temporary directory, flushed to disk and renamed into place (atomic on
POSIX); only then is `RUN/checkpoints/latest` (the name of the newest) replaced, again by rename.
A run killed at any moment therefore keeps its last complete checkpoint, never half of one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from th1nker.config_files import ConfigError
from th1nker.models.family import Family, build_model
from th1nker.train.experiment import ExperimentConfig, load_experiment

WEIGHTS, CONFIG, TRAINER, LATEST = "model.safetensors", "config.yaml", "trainer.pt", "latest"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def save_checkpoint(
    directory: Path,
    model: Family,
    config: ExperimentConfig,
    trainer_state: dict | None = None,
) -> Path:
    """Write a complete checkpoint at `directory` (replacing nothing until it is complete)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    model.save_weights(temporary / WEIGHTS)
    (temporary / CONFIG).write_text(config.to_yaml())
    if trainer_state is not None:
        torch.save(trainer_state, temporary / TRAINER)
    for file in temporary.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(temporary, directory)
    _fsync_dir(directory.parent)
    return directory


def save_training_checkpoint(
    run_dir: Path, step: int, model: Family, config: ExperimentConfig, state: dict, keep: int
) -> Path:
    """Checkpoint `step` of a run, mark it latest, and delete all but the newest `keep`."""
    root = run_dir / "checkpoints"
    directory = save_checkpoint(root / f"step_{step:07d}", model, config, state)
    _write_text_atomically(root / LATEST, directory.name)
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old)
    return directory


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint directory for a run directory (its latest) or a checkpoint directory."""
    path = Path(path)
    if (path / WEIGHTS).is_file():
        return path
    latest = path / "checkpoints" / LATEST
    if latest.is_file():
        directory = path / "checkpoints" / latest.read_text().strip()
        if (directory / WEIGHTS).is_file():
            return directory
        raise ConfigError(f"{latest} names {directory.name}, which is missing or incomplete")
    if not path.exists():
        raise ConfigError(f"checkpoint or run directory {path} does not exist")
    raise ConfigError(
        f"{path} is neither a checkpoint (no {WEIGHTS}) nor a run with checkpoints/{LATEST}"
    )


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu"):
    """(experiment config, model in eval mode, checkpoint directory) of a run or checkpoint."""
    directory = find_checkpoint(path)
    config = load_experiment(directory / CONFIG)
    model = build_model(config.model)
    missing, unexpected = model.load_weights(directory / WEIGHTS)
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
    return torch.load(file, map_location="cpu", weights_only=True)
