"""The configurations of the Th1nker, the TRM and the decoder baseline: validated objects,
documented field by field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from jaxtyping import Int
from pydantic import BeforeValidator, Field, SerializeAsAny, model_validator
from torch import Tensor

from th1nker.config_files import refuse_renamed
from th1nker.memory.registry import MemorySpec, memory_spec
from th1nker.models.family import FamilyConfig
from th1nker.tasks.scheme import TaskScheme
from th1nker.tasks.vocab import VOCAB_SIZE


def input_size_refusal(config: ModelConfig | TRMConfig | DecoderConfig, tokens: int) -> str | None:
    if tokens <= config.input_cache_size:
        return None
    return (
        f"{tokens} input tokens; this model reads at most {config.input_cache_size} "
        "(model.input_cache_size)"
    )


def check_input_fits(config: ModelConfig | TRMConfig | DecoderConfig, task: TaskScheme) -> None:
    if config.input_cache_size < task.max_length:
        raise ValueError(
            f"model.input_cache_size {config.input_cache_size} is smaller than "
            f"task.max_length {task.max_length}: the model could not read the longest problems"
        )


def check_sizes(config: ModelConfig | TRMConfig | DecoderConfig) -> None:
    """Heads divide the width; the vocabulary holds the task language's."""
    if config.dim % config.n_heads:
        raise ValueError(f"dim {config.dim} must be divisible by n_heads {config.n_heads}")
    if config.vocab < VOCAB_SIZE:
        raise ValueError(f"vocab {config.vocab} is smaller than the task language's {VOCAB_SIZE}")


class ModelConfig(FamilyConfig):
    """Sizes and switches of the Th1nker model (docs/model.md explains each choice)."""

    kind: Literal["th1nker"] = Field("th1nker", description="which model family")
    dim: int = Field(64, ge=8, description="width of tokens, latents and memory vectors")
    n_layers: int = Field(2, ge=1, description="latent self-attention blocks per thinking step")
    n_heads: int = Field(4, ge=1, description="attention heads (dim must divide evenly)")
    vocab: int = Field(VOCAB_SIZE, description="token vocabulary size (the task language's)")
    latent: int = Field(24, ge=1, description="latent vectors; latent j sits at significance j")
    steps: int = Field(2, ge=1, description="thinking steps for a problem of 0 digits")
    steps_per_digit: float = Field(
        0.0, ge=0, description="extra steps per decimal digit of the problem (harder: more)"
    )
    max_thinking_steps: int = Field(16, ge=1, description="upper bound on thinking steps")
    steps_from: Literal["digits", "trace"] = Field(
        "digits",
        description="a problem's step budget: steps + steps_per_digit x digits, or the length "
        "of its algorithm trace + spare_steps (docs/task-language.md#traces)",
    )
    spare_steps: int = Field(0, ge=0, description="steps_from trace: steps after the trace")
    mem_cache_size: int = Field(
        96,
        ge=0,
        description="latent memory: the most latent vectors it holds (latent per step, so the "
        "last mem_cache_size // latent steps whole); the oldest are evicted first",
    )
    memory: Annotated[SerializeAsAny[MemorySpec] | None, BeforeValidator(memory_spec)] = Field(
        None,
        description="null: the latent FIFO memory above; or a library memory "
        "{type: dnc|ntm|attention|..., its fields}, written with the pooled latents every step, "
        "its reads attended to (docs/memory.md)",
    )
    input_cache_size: int = Field(
        128, ge=1, description="most input tokens a problem may have (task.max_length fits it)"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="in attention and MLPs")
    positional: Literal["significance", "sequence"] = Field(
        "significance",
        description="rotary positions: digit index inside its number, or token index",
    )
    position_offset: int = Field(
        12,
        ge=0,
        description="training shifts digit and answer positions by a random 0..this (latents "
        "and operators stay), so significance is not tied to a latent's index; keep "
        "latent > position_offset + longest trained answer",
    )
    rotary_fraction: float = Field(0.5, ge=0, le=1, description="share of head features rotated")
    decoder: Literal["autoregressive", "parallel"] = Field(
        "autoregressive", description="how write_out produces the answer"
    )
    decoder_layers: int = Field(1, ge=1, description="blocks of the write_out decoder")
    decoder_window: int = Field(
        2, ge=0, description="autoregressive decoder: attend to the last N answer tokens (0: all)"
    )
    answer_slots: int = Field(32, ge=2, description="parallel decoder: longest answer + eos")
    truncate_gradients: bool = Field(False, description="detach latents between thinking steps")
    recursion: Literal["none", "trm"] = Field(
        "none",
        description="process(): none (the blocks once) or trm (a second latent set z: "
        "latent_updates x z <- blocks(z + latents), then latents <- blocks(latents + z))",
    )
    latent_updates: int = Field(2, ge=1, description="recursion trm: updates of z per step")
    halting: bool = Field(
        False,
        description="learn a halting head (done?) on the pooled latents; at inference each "
        "problem stops at the first step it says done, or at its steps_for budget",
    )
    halt_weight: float = Field(0.5, ge=0, description="loss = cross-entropy + this * halting BCE")
    halt_threshold: float = Field(
        0.5, gt=0, lt=1, description="halting probability at which a problem stops"
    )
    mlp_ratio: int = Field(2, ge=1, description="MLP hidden width = mlp_ratio * dim")
    max_numbers: int = Field(16, ge=1, description="ordinal embeddings (later numbers share)")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return refuse_renamed(data, {"max_steps": "max_thinking_steps"})

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        check_sizes(self)
        if self.steps > self.max_thinking_steps:
            raise ValueError(
                f"steps {self.steps} exceeds max_thinking_steps {self.max_thinking_steps}"
            )
        return self

    def steps_for(self, digits: Int[Tensor, " batch"]) -> Int[Tensor, " batch"]:
        """Thinking steps per problem whose largest operand has `digits` decimal digits."""
        extra = torch.ceil(self.steps_per_digit * digits.float()).long()
        return (self.steps + extra).clamp(max=self.max_thinking_steps)

    def describe(self) -> str:
        budget = (
            f"steps {self.steps} (+{self.steps_per_digit}/digit, max {self.max_thinking_steps})"
            if self.steps_from == "digits"
            else f"steps = trace + {self.spare_steps} (max {self.max_thinking_steps})"
        )
        return (
            f"Th1nker, dim {self.dim}, {self.n_layers} layers, {self.latent} latents, {budget}, "
            f"decoder {self.decoder}, halting {self.halting}"
        )

    def check_task(self, task: TaskScheme) -> None:
        check_input_fits(self, task)

    def input_refusal(self, tokens: int) -> str | None:
        return input_size_refusal(self, tokens)


class TRMConfig(FamilyConfig):
    """The Tiny Recursive Model (docs/recursion.md explains each choice)."""

    kind: Literal["trm"] = Field(description="which model family: trm")
    dim: int = Field(64, ge=8, description="width of x, y, z")
    n_heads: int = Field(4, ge=1, description="attention heads of the tiny network")
    n_layers: int = Field(2, ge=1, description="blocks of the tiny network")
    mixer: Literal["attention", "mlp"] = Field(
        "attention", description="how positions talk: self-attention, or an MLP-mixer"
    )
    mlp_ratio: int = Field(2, ge=1, description="feed-forward hidden width = mlp_ratio * dim")
    vocab: int = Field(VOCAB_SIZE, description="token vocabulary size (the task language's)")
    input_cache_size: int = Field(
        64, ge=1, description="input tokens: every problem is padded to it (task.max_length fits)"
    )
    answer_slots: int = Field(24, ge=2, description="blank slots after the problem: answer + eos")
    max_numbers: int = Field(16, ge=1, description="ordinal embeddings (later numbers share)")
    rotary_fraction: float = Field(0.5, ge=0, le=1, description="share of head features rotated")
    dropout: float = Field(0.0, ge=0, lt=1, description="in attention and MLPs")
    latent_updates: int = Field(2, ge=1, description="n: updates of z before each update of y")
    recursions: int = Field(2, ge=1, description="T: latent recursions per step (T-1 no-grad)")
    supervision_steps: int = Field(8, ge=1, description="N_sup: most supervision steps")
    halting: bool = Field(True, description="learn when to stop (q-head); false: always N_sup")
    halt_weight: float = Field(0.5, ge=0, description="loss = cross-entropy + this * halting BCE")
    halt_threshold: float = Field(0.5, gt=0, lt=1, description="halting probability to stop at")
    halt_exploration: float = Field(
        0.1, ge=0, le=1, description="training: share of problems kept for a random minimum"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TRMConfig:
        check_sizes(self)
        return self

    def describe(self) -> str:
        return (
            f"TRM, dim {self.dim}, {self.n_layers} {self.mixer} blocks, n={self.latent_updates}, "
            f"T={self.recursions}, N_sup={self.supervision_steps}, halting {self.halting}"
        )

    def check_task(self, task: TaskScheme) -> None:
        check_input_fits(self, task)

    def input_refusal(self, tokens: int) -> str | None:
        return input_size_refusal(self, tokens)

    def steps_for(self, digits: Int[Tensor, " batch"]) -> Int[Tensor, " batch"]:
        """The step budget of every problem: N_sup (halting decides how many are used)."""
        return torch.full_like(digits, self.supervision_steps)


class DecoderConfig(FamilyConfig):
    """The decoder-only transformer baseline (models/decoder_only.py, docs/baselines.md)."""

    kind: Literal["decoder"] = Field(description="which model family: decoder")
    dim: int = Field(64, ge=8, description="width of token vectors")
    n_layers: int = Field(6, ge=1, description="causal transformer blocks")
    n_heads: int = Field(4, ge=1, description="attention heads (dim must divide evenly)")
    mlp_ratio: int = Field(2, ge=1, description="feed-forward hidden width = mlp_ratio * dim")
    vocab: int = Field(VOCAB_SIZE, description="token vocabulary size (the task language's)")
    rotary_fraction: float = Field(
        0.5, ge=0, le=1, description="share of head features rotated by the token's index"
    )
    max_significance: int = Field(
        40, ge=1, description="Abacus embeddings of digit significance -this..this (clamped)"
    )
    position_offset: int = Field(
        8, ge=0, description="training shifts every digit significance by a random 0..this"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="in attention and MLPs")
    scratchpad: bool = Field(
        False,
        description="write the algorithm's trace before the answer (state = state = ... = "
        "answer eos; train with supervision: trace); false: the answer alone",
    )
    max_scratchpad: int = Field(
        256, ge=2, description="scratchpad: most tokens written before giving up on an answer"
    )
    input_cache_size: int = Field(
        128, ge=1, description="most input tokens a problem may have (task.max_length fits it)"
    )
    length_buckets: int = Field(
        1,
        ge=1,
        le=64,
        description="training splits each batch into this many groups by target length, each "
        "padded to its own longest row (same loss, less padding when lengths vary a lot)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DecoderConfig:
        check_sizes(self)
        return self

    def describe(self) -> str:
        writes = "scratchpad then answer" if self.scratchpad else "answer alone"
        return f"decoder, dim {self.dim}, {self.n_layers} layers, Abacus positions, {writes}"

    def check_task(self, task: TaskScheme) -> None:
        check_input_fits(self, task)

    def check_supervision(self, supervision: str, fading: bool) -> None:
        if self.scratchpad and (supervision != "trace" or fading):
            raise ValueError(
                "model.scratchpad needs train.supervision: trace and no train.trace_fade "
                "(the scratchpad is the trace)"
            )
        if not self.scratchpad and supervision == "trace":
            raise ValueError(
                "the decoder without model.scratchpad learns the answer alone: use "
                "train.supervision: final, or model.scratchpad: true to write the trace"
            )

    def input_refusal(self, tokens: int) -> str | None:
        return input_size_refusal(self, tokens)
