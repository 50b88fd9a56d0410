"""A toy memory type, registered in this one file: a running mean of what it is sent, read
back through one learned projection (used by the contract test in a YAML network and as the
Th1nker's memory)."""

from __future__ import annotations

from typing import Literal, TypedDict

import torch
from jaxtyping import Float
from pydantic import Field
from torch import Tensor, nn

from th1nker.memory.registry import MemorySpec, register_memory
from th1nker.memory.state import Stateful


class MeanState(TypedDict):
    total: Float[Tensor, "batch width"]
    count: Float[Tensor, " batch"]


@register_memory
class MeanSpec(MemorySpec):
    type: Literal["mean"] = "mean"
    width: int = Field(8, ge=1)

    def build(self) -> MeanMemory:
        return MeanMemory(self.width)


class MeanMemory(Stateful):
    """Remembers the mean of every interface vector so far; reads it out (one read vector)."""

    def __init__(self, width: int):
        super().__init__()
        self.width, self.interface_size, self.output_size, self.reads = width, width, width, 1
        self.read_out = nn.Linear(width, width)

    def initial_state(self, batch_size: int, device: torch.device) -> MeanState:
        return MeanState(
            total=torch.zeros(batch_size, self.width, device=device),
            count=torch.zeros(batch_size, device=device),
        )

    def forward(self, x: Tensor, state: MeanState) -> tuple[Tensor, MeanState]:
        total, count = state["total"] + x, state["count"] + 1
        return self.read_out(total / count[:, None]), MeanState(total=total, count=count)
