"""Memory flags: one dict, merged over the defaults below, validated (x-transformers style).

- `erase` (true): writers erase (`M <- M * (1 - w e^T)`) before adding; false: add only.
- `gating` (true): DNC allocation and write gates; false: both fixed at 1.
- `beta` ("learned"): key strength, 1 + softplus of the interface, or a fixed number.
- `gamma` ("learned"): NTM sharpening exponent, 1 + softplus of the interface, or fixed (>= 1).
- `top_k` (0): attention memory reads only the k best-matching slots (0: softmax over all).
- `gate` ("sigmoid"): sigmoid | steep_sigmoid (sigmoid(slope * x)) | heaviside (0/1 forward,
  steep-sigmoid gradient: straight-through).
- `gate_slope` (5.0): slope of steep_sigmoid and of the heaviside's surrogate gradient.
- `debug` (false): keep the last weightings in the state (`debug_read_weights`,
  `debug_write_weights`, [batch, heads, slots]) for inspection.
- `init` ("constant"): the starting contents of a writable memory (DNC, NTM): constant (1e-6
  everywhere, as in the paper), random (normal, std 0.01, from torch's seeded generator) or
  learned (a parameter [slots, width], the same for every row).
- `normalize` ("none"): normalize each read vector over its width: none | layer | rms.
- `dropout` (0.0): dropout on the read vectors (training only).
- `pass_through` (false): the memory's output is its reads followed by its interface input, so
  what the memory was sent bypasses it.

An unknown flag or a bad value is an error naming the flag and the allowed values.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import Tensor

from th1nker.config_files import ConfigError, format_validation_error


class MemoryFlags(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    erase: bool = True
    gating: bool = True
    beta: Literal["learned"] | float = "learned"
    gamma: Literal["learned"] | float = "learned"
    top_k: int = Field(0, ge=0)
    gate: Literal["sigmoid", "steep_sigmoid", "heaviside"] = "sigmoid"
    gate_slope: float = Field(5.0, gt=0)
    debug: bool = False
    init: Literal["constant", "random", "learned"] = "constant"
    normalize: Literal["none", "layer", "rms"] = "none"
    dropout: float = Field(0.0, ge=0, lt=1)
    pass_through: bool = False


def resolve_flags(flags: dict | MemoryFlags | None) -> MemoryFlags:
    """The flags merged over the defaults; ConfigError naming each bad flag."""
    if isinstance(flags, MemoryFlags):
        return flags
    try:
        return MemoryFlags.model_validate(flags or {})
    except ValidationError as error:
        raise ConfigError("memory flags:\n" + format_validation_error(error, MemoryFlags)) from None


def gate(x: Tensor, flags: MemoryFlags) -> Tensor:
    """The configured gate of raw interface values, in [0, 1]."""
    if flags.gate == "sigmoid":
        return torch.sigmoid(x)
    soft = torch.sigmoid(flags.gate_slope * x)
    if flags.gate == "steep_sigmoid":
        return soft
    hard = (x > 0).to(x.dtype)
    return hard + soft - soft.detach()  # forward 0/1, gradient of the steep sigmoid


def _positive(x: Tensor, setting: str | float) -> Tensor:
    if setting == "learned":
        return 1 + torch.nn.functional.softplus(x)
    return torch.full_like(x, float(setting))


def strength(x: Tensor, flags: MemoryFlags) -> Tensor:
    """Key strength beta >= 1: learned from the interface, or the fixed flag value."""
    return _positive(x, flags.beta)


def sharpness(x: Tensor, flags: MemoryFlags) -> Tensor:
    """NTM sharpening gamma >= 1: learned from the interface, or the fixed flag value."""
    return _positive(x, flags.gamma)
