"""Memory flags: switches of a memory type, typed per type (x-transformers style), so a flag a
memory does not use is refused by name. Every memory reads out by the `ReadOutFlags`:

- `normalize` ("none"): normalize each read vector over its width: none | layer | rms.
- `dropout` (0.0): dropout on the read vectors (training only).
- `pass_through` (false): the memory's output is its reads followed by its interface input, so
  what the memory was sent bypasses it.

Writable memories (DNC, NTM) add `WritableFlags`:

- `erase` (true): writers erase (`M <- M * (1 - w e^T)`) before adding; false: add only.
- `beta` ("learned"): key strength, 1 + softplus of the interface, or a fixed number.
- `gate` ("sigmoid"): sigmoid | steep_sigmoid (sigmoid(slope * x)) | heaviside (0/1 forward,
  steep-sigmoid gradient: straight-through).
- `gate_slope` (5.0): slope of steep_sigmoid and of the heaviside's surrogate gradient.
- `init` ("constant"): the starting contents: constant (1e-6 everywhere, as in the paper),
  random (normal, std 0.01, from torch's seeded generator) or learned (a parameter
  [slots, width], the same for every row).

The DNC adds `gating` (true: allocation and write gates; false: both fixed at 1), the NTM `gamma`
("learned": sharpening exponent 1 + softplus of the interface, or fixed >= 1), the attention
memory `top_k` (0: softmax over all slots; k: over the k best-matching only).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor


class ReadOutFlags(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    normalize: Literal["none", "layer", "rms"] = "none"
    dropout: float = Field(0.0, ge=0, lt=1)
    pass_through: bool = False


class WritableFlags(ReadOutFlags):
    erase: bool = True
    beta: Literal["learned"] | float = "learned"
    gate: Literal["sigmoid", "steep_sigmoid", "heaviside"] = "sigmoid"
    gate_slope: float = Field(5.0, gt=0)
    init: Literal["constant", "random", "learned"] = "constant"


class DNCFlags(WritableFlags):
    gating: bool = True


class NTMFlags(WritableFlags):
    gamma: Literal["learned"] | float = "learned"


class AttentionFlags(ReadOutFlags):
    top_k: int = Field(0, ge=0)


def gate(x: Tensor, flags: WritableFlags) -> Tensor:
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


def strength(x: Tensor, flags: WritableFlags) -> Tensor:
    """Key strength beta >= 1: learned from the interface, or the fixed flag value."""
    return _positive(x, flags.beta)


def sharpness(x: Tensor, flags: NTMFlags) -> Tensor:
    """NTM sharpening gamma >= 1: learned from the interface, or the fixed flag value."""
    return _positive(x, flags.gamma)
