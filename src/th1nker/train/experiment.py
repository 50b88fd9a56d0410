"""An experiment: task scheme + model + optimiser + training loop settings, in one YAML file.

    name: add_sub_10
    seed: 0
    task: {...a task scheme...}        # or the path of a scheme YAML, e.g. configs/tasks/mixed.yaml
    model: {dim: 64, ...}              # ModelConfig
    optim: {lr: 3.0e-3, ...}
    train: {batch_size: 64, max_steps: 3000, ...}
    eval: {examples: 2000, ...}
    losses: {outer: {task: 1.0, ...}, slow: [...]}   # the loss hierarchy (train/losses.py)

Every block has defaults: an empty file (or no file) is the default experiment, base-10 addition
and subtraction up to 10 digits. `configs/experiments/` holds more.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SerializeAsAny, model_validator

from th1nker.config_files import (
    ConfigError,
    merge_overrides,
    override_key,
    read_yaml,
    registered,
    validate,
)
from th1nker.memory.registry import MEMORIES
from th1nker.models.config import ModelConfig
from th1nker.models.family import CONFIGS, FamilyConfig
from th1nker.tasks.scheme import GENERATOR_SPECS, TaskScheme
from th1nker.train.losses import LossesConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptimConfig(_Strict):
    """AdamW with linear warm-up then cosine decay to `min_lr_ratio * lr` at `train.max_steps`."""

    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0, description="on matrices only (not norms, biases)")
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = Field(100, ge=0)
    min_lr_ratio: float = Field(0.05, ge=0, le=1)
    grad_clip: float = Field(1.0, gt=0, description="max global gradient norm")


class TrainConfig(_Strict):
    batch_size: int = Field(64, ge=1)
    max_steps: int = Field(4000, ge=1, description="optimiser steps (the schedule spans them)")
    max_minutes: float | None = Field(
        None, gt=0, description="wall-clock cap: stop early, checkpoint and report (not seeded)"
    )
    stop_at_accuracy: float | None = Field(
        None, gt=0, le=1, description="stop at the first val evaluation reaching this exact match"
    )
    log_every: int = Field(50, ge=1)
    eval_every: int = Field(500, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    num_workers: int = Field(0, ge=0, description="DataLoader processes drawing problems")
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 elsewhere"
    )
    compile: bool = False
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's choice)")
    runs_dir: str = Field("runs", description="new runs go to RUNS_DIR/NAME-DATE-TIME/")
    tensorboard: bool = Field(True, description="also write metrics for TensorBoard")
    supervision: Literal["final", "trace"] = Field(
        "final",
        description="what thinking step k is taught: the answer (final), or the state of the "
        "problem's algorithm after k+1 steps (trace; the answer on its last step)",
    )
    trace_fade: tuple[int, int] | None = Field(
        None,
        description="[start, end] optimiser steps over which the share of trace-supervised "
        "problems falls linearly from 1 to 0 (stepwise internalisation); None: all, always",
    )

    @model_validator(mode="after")
    def _fade_in_order(self) -> TrainConfig:
        if self.trace_fade is not None and not 0 <= self.trace_fade[0] < self.trace_fade[1]:
            raise ValueError(
                f"trace_fade {list(self.trace_fade)} must be [start, end], start < end"
            )
        if self.trace_fade is not None and self.supervision != "trace":
            raise ValueError("trace_fade needs supervision: trace")
        return self

    def trace_share(self, step: int) -> float:
        """The share of trace-supervised problems at optimiser step `step`."""
        if self.trace_fade is None:
            return 1.0
        start, end = self.trace_fade
        return min(1.0, max(0.0, (end - step) / (end - start)))


class EvalConfig(_Strict):
    examples: int = Field(2000, ge=1, description="problems per periodic (val) evaluation")
    final_examples: int = Field(5000, ge=1, description="problems per split in the final report")
    batch_size: int = Field(500, ge=1)
    seed: int = Field(1234, ge=0, description="seed of the evaluation problems")
    steps_sweep: list[int] = Field(
        default_factory=lambda: [1, 2, 3, 4], description="fixed step counts of the steps plot"
    )
    plots: bool = Field(True, description="draw the report's PNG plots (false: tables only)")


def _scheme_from_path(value: Any) -> Any:
    if isinstance(value, str):
        return read_yaml(value, {}, (), "scheme")[0]
    return value


# `model.kind` picks a registered family (models/family.py); th1nker when absent (older run
# directories have no kind)
AnyModel = Annotated[
    SerializeAsAny[FamilyConfig], BeforeValidator(registered(CONFIGS, "kind", "th1nker", "model"))
]


def import_plugins(data: Any) -> Any:
    """Import the modules named in `imports` (they register model families or memory types)
    before the rest of the experiment is validated."""
    names = data.get("imports", []) if isinstance(data, dict) else []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("imports: a list of module names, e.g. [my_package.my_family]")
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ValueError(f"imports: cannot import {name}: {error}") from None
        except Exception as error:  # noqa: BLE001 (the module's own failure, reported in a line)
            raise ValueError(
                f"imports: importing {name} failed: {type(error).__name__}: {error}"
            ) from None
    return data


class ExperimentConfig(_Strict):
    imports: list[str] = Field(
        default_factory=list,
        description="modules imported first: plugins that register families or memories",
    )
    name: str = "add_sub_10"
    seed: int = Field(0, ge=0, description="fixes the data stream and the initialisation")
    task: Annotated[TaskScheme, BeforeValidator(_scheme_from_path)] = Field(
        default_factory=TaskScheme
    )
    model: AnyModel = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    losses: LossesConfig = Field(default_factory=LossesConfig)

    @model_validator(mode="before")
    @classmethod
    def _plugins(cls, data: Any) -> Any:
        return import_plugins(data)

    @model_validator(mode="after")
    def _fits(self) -> ExperimentConfig:
        self.model.check_task(self.task)
        if self.task.curriculum is not None and self.train.num_workers:
            raise ValueError(
                "train.num_workers must be 0 with a task curriculum (the stage, and with it "
                "what the next batch holds, can change at any evaluation)"
            )
        self.model.check_supervision(self.train.supervision, self.train.trace_fade is not None)
        return self

    def to_yaml(self) -> str:
        """The fully resolved experiment (saved with every run and checkpoint)."""
        data = self.model_dump(mode="json")
        if data["losses"]["inner"] is None:  # not derived yet (train/losses.py)
            del data["losses"]["inner"]
        return yaml.safe_dump(data, sort_keys=False)


def _beside(experiment: str | Path, value: Any) -> Any:
    """A relative file path in an experiment: beside the experiment file if there, else as is."""
    if not isinstance(value, str) or Path(value).is_absolute():
        return value
    beside = Path(experiment).parent / value
    return str(beside) if beside.is_file() else value


def load_experiment(
    path: str | Path | None = None, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """The experiment in `path` (None: the default) with `key=value` overrides; ConfigError.

    A `task` given as a path, and a model's file fields (`path_fields`, e.g. a memory network),
    are looked up relative to the experiment file, then to the working directory.
    """
    default = ExperimentConfig().model_dump(mode="json")
    default["model"] = {}  # the family's own defaults: `model.kind=trm` must not inherit th1nker's
    data, source = read_yaml(path, default, (), "experiment")
    for override in overrides:
        if isinstance(data.get("task"), str) and override_key(override).startswith("task."):
            # a field of a task file: the file's fields first, then this one over them
            data["task"] = _scheme_from_path(_beside(path, data["task"]) if path else data["task"])
        data = merge_overrides(data, [override])
    if path is not None:
        if isinstance(data.get("task"), str):
            data["task"] = _beside(path, data["task"])
        model = data.get("model")
        if isinstance(model, dict) and model.get("kind", "th1nker") in CONFIGS:
            for field in CONFIGS[model.get("kind", "th1nker")].path_fields:
                if field in model:
                    model[field] = _beside(path, model[field])
    return validate(ExperimentConfig, data, source, {**GENERATOR_SPECS, **CONFIGS, **MEMORIES})


__all__ = ["ConfigError", "ExperimentConfig", "load_experiment"]
