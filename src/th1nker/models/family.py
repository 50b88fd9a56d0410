"""The model contract: what every model family implements, and the registry of families.

A family is an `nn.Module` subclass of `Family` with a config class (`FamilyConfig`, whose `kind`
names it) and four duties:

    steps = model.steps_for(batch)                       # thinking-step budget per problem
    loss, stats, carry = model.loss(batch, carry)         # one optimiser step's loss (+ graph)
    out = model.generate(input_ids, input_mask, steps, max_answer)   # -> Generated
    model.save_weights(path) / model.load_weights(path)   # its checkpoint file

and may define `model.sample(input_ids, input_mask, steps, max_answer, temperature)`, the
candidates of verified search (th1nker.search).

`carry` is whatever the family keeps from one training step to the next (a dict of tensors, or
None): the trainer only stores it in checkpoints. A family registers once, in its own module,
with `@register_family`; the experiment's `model` block, building, the training step,
evaluation, the report and `solve` all go through this registry and never ask for a kind.
docs/architecture.md shows how to add one.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import ClassVar, get_args

import torch
from jaxtyping import Bool, Int
from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_model, save_model
from torch import Tensor, nn

from th1nker.models.generation import Generated
from th1nker.tasks.scheme import TaskScheme

Batch = dict[str, Tensor]
Carry = dict[str, Tensor] | None


class FamilyConfig(BaseModel):
    """A family's configuration: strict (unknown fields are errors), frozen, with a `kind`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path_fields: ClassVar[tuple[str, ...]] = ()  # fields that name files (relative: beside
    # the experiment file, then the working directory)
    kind: str

    def describe(self) -> str:
        """One line with the model's main sizes (for reports)."""
        return self.kind

    def check_task(self, task: TaskScheme) -> None:
        """Raise ValueError if this model cannot take the task's problems (e.g. too long)."""

    def input_refusal(self, tokens: int) -> str | None:
        """Why this model cannot read a problem of `tokens` input tokens (None: it can)."""
        return None

    def check_supervision(self, supervision: str, fading: bool) -> None:
        """Raise ValueError if this model cannot be trained with `train.supervision` (`final`
        or `trace`), with a `train.trace_fade` schedule if `fading`."""


@dataclasses.dataclass
class LossStats:
    """What one training step reports: per_step: the loss of each thinking step (one entry for a
    family without steps); rows: problems counted for accuracy this step (finished ones);
    correct: of them, exactly right (teacher forced); tokens: answer tokens trained on;
    thinking_steps: thinking steps the counted rows used, summed."""

    per_step: list[float]
    correct: int
    rows: int
    tokens: int
    thinking_steps: int


class Family(nn.Module, metaclass=abc.ABCMeta):
    """The base of every model family (see the module docstring); `loss` and `generate` are
    abstract: a family must define both."""

    config_class: ClassVar[type[FamilyConfig]]
    compile_refusal: ClassVar[str | None] = None  # why torch.compile cannot be used, if so

    def __init__(self, config: FamilyConfig):
        super().__init__()
        self.config = config
        # the device follows .to(); a family without parameters still has this buffer
        self.register_buffer("anchor", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def steps_for(self, batch: Batch) -> Int[Tensor, " batch"]:
        """The thinking-step budget of every problem (default: one step)."""
        return torch.ones_like(batch["digits"])

    @property
    def needs_trace(self) -> bool:
        """Whether `steps_for` reads the batch's algorithm traces (`trace_len`), so that every
        batch given to this model must carry them (`ProblemBatch.to_tensors(trace=True)`)."""
        return False

    @abc.abstractmethod
    def loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, LossStats, Carry]:
        """The loss of one optimiser step on `batch` (tensors on the model's device)."""

    @abc.abstractmethod
    def generate(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        steps: Int[Tensor, " batch"],
        max_answer: int,
        trace: bool = False,
        use_halting: bool = True,
    ) -> Generated:
        """Greedy answers [1 (or steps with `trace`), batch, max_answer], pad after eos."""

    def sample(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        steps: Int[Tensor, " batch"],
        max_answer: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Int[Tensor, "batch answer"]:
        """One answer per row drawn at `temperature` (pad after eos): the candidates of
        verified search (th1nker.search). Optional: a family that cannot sample says so."""
        raise ValueError(
            f"model family {self.config.kind!r} cannot sample answers (sampled candidates need "
            "a family that defines `sample`, e.g. decoder or trm)"
        )

    def save_weights(self, path: Path) -> None:
        """Write the checkpoint file (safetensors of the state dict; tied tensors once)."""
        save_model(self, str(path))

    def load_weights(self, path: Path) -> tuple[list[str], list[str]]:
        """Load the checkpoint file; returns (missing, unexpected) tensor names."""
        missing, unexpected = load_model(self, str(path), strict=False, device="cpu")
        return sorted(missing), sorted(unexpected)


FAMILIES: dict[str, type[Family]] = {}
CONFIGS: dict[str, type[FamilyConfig]] = {}


def register_family(family: type[Family]) -> type[Family]:
    """Class decorator: make `family` buildable by its config's `kind` (`kind: Literal["name"]`)."""
    (kind,) = get_args(family.config_class.model_fields["kind"].annotation)
    if kind in FAMILIES and FAMILIES[kind] is not family:
        raise ValueError(f"model family {kind!r} is registered twice")
    FAMILIES[kind], CONFIGS[kind] = family, family.config_class
    return family


def build_model(config: FamilyConfig) -> Family:
    """A freshly initialised model of `config.kind` (seed torch first for a repeatable init)."""
    return FAMILIES[config.kind](config)
