"""Latent / KV memory: appended vectors (the Th1nker's latents of earlier thinking steps), kept
in a bounded FIFO cache. The Th1nker model uses it functionally: the state dict is passed in and
returned (`state = memory.append(state, values, positions)`), so one batch never shares it.

State (a dict, the only copy of the memory):
- `values`    [batch, slots, dim]: stored latent vectors, oldest first;
- `positions` [batch, slots]: each vector's latent position (for rotary attention).

`append` adds a block of latents at the end; when more than `capacity` vectors are held, the oldest
are evicted first (first in, first out), so the memory always holds the most recent `capacity`
latents, e.g. the last `capacity // latent` thinking steps whole.
"""

from __future__ import annotations

from typing import TypedDict

import torch
from jaxtyping import Float, Int
from torch import Tensor


class MemoryState(TypedDict):
    values: Float[Tensor, "batch slots dim"]
    positions: Int[Tensor, "batch slots"]


class LatentMemory:
    """Bounded FIFO memory of latent vectors (no parameters: it stores, attention reads)."""

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"mem_cache_size must be >= 0, got {capacity}")
        self.capacity = capacity

    @staticmethod
    def init_state(like: Float[Tensor, "batch n dim"]) -> MemoryState:
        """An empty memory for the batch, dtype and device of `like`."""
        batch, _, dim = like.shape
        return MemoryState(
            values=like.new_zeros(batch, 0, dim),
            positions=torch.zeros(batch, 0, dtype=torch.long, device=like.device),
        )

    def append(
        self,
        state: MemoryState,
        values: Float[Tensor, "batch n dim"],
        positions: Int[Tensor, "batch n"],
    ) -> MemoryState:
        """The memory with `values` appended and the oldest vectors beyond capacity evicted."""
        keep = self.capacity
        joined_values = torch.cat((state["values"], values), dim=1)
        joined_positions = torch.cat((state["positions"], positions), dim=1)
        start = max(0, joined_values.shape[1] - keep)
        return MemoryState(values=joined_values[:, start:], positions=joined_positions[:, start:])

    @staticmethod
    def rows(state: MemoryState, rows: Tensor | slice) -> MemoryState:
        """The memory of batch rows `rows` (an index tensor or a slice)."""
        return MemoryState(values=state["values"][rows], positions=state["positions"][rows])

    @staticmethod
    def detach_state(state: MemoryState) -> MemoryState:
        """The same memory cut from the autograd graph (gradient truncation between steps)."""
        return MemoryState(values=state["values"].detach(), positions=state["positions"])
