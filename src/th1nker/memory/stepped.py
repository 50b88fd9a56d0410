"""Any library memory (DNC, NTM, attention, or a registered one) as the Th1nker's memory, in
place of the latent FIFO.

The Th1nker asks its memory for three things (`latent.LatentMemory` is the default one), all
functional (state in, state out): `init_state(latents)`, `append(state, latents, positions)`
once per thinking step, and `detach_state(state)`; the latents then attend to `state["values"]`
at `state["positions"]`. `SteppedMemory` gives a step-wise memory that interface:

    interface = W_i mean_j LayerNorm(latents[:, j])        # [batch, interface]
    out, s    = memory(interface, s)                        # one memory step: write, then read
    values    = W_o out, viewed as [batch, reads, dim]      # one token per read head

so each thinking step writes the (pooled) latents into the memory and the latents of that step
attend to what the read heads return. The memory's own state (matrix, usage, links, head
weightings) travels in the state dict under `memory`, begun afresh by `init_state` at the start
of every `think`: nothing is kept in the module, so `think` is re-entrant.

Run `python -m th1nker.memory.stepped` for a smoke check.
"""

from __future__ import annotations

from typing import Any, TypedDict

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from th1nker.memory.latent import LatentMemory
from th1nker.memory.registry import MemorySpec, memory_spec
from th1nker.memory.state import State, Stateful, detach_state


class SteppedState(TypedDict):
    values: Float[Tensor, "batch reads dim"]
    positions: Int[Tensor, "batch reads"]
    memory: State


class SteppedMemory(nn.Module):
    """A Stateful memory with `interface_size` inputs, `output_size` outputs and `reads` read
    vectors per step, seen by the latents (width `dim`) as one token per read vector."""

    def __init__(self, memory: Stateful, dim: int):
        super().__init__()
        self.memory = memory
        self.tokens = memory.reads
        self.norm = self.to_interface = None  # for a memory without interface (persistent)
        if memory.interface_size:
            self.norm = nn.LayerNorm(dim)
            self.to_interface = nn.Linear(dim, memory.interface_size)
        self.to_tokens = nn.Linear(memory.output_size, self.tokens * dim)

    def init_state(self, like: Float[Tensor, "batch n dim"]) -> SteppedState:
        """A fresh memory for the batch and device of `like`; no tokens yet."""
        empty = LatentMemory.init_state(like)
        return SteppedState(
            values=empty["values"],
            positions=empty["positions"],
            memory=self.memory.init_state(like.shape[0], like.device),
        )

    def append(
        self,
        state: SteppedState,
        values: Float[Tensor, "batch n dim"],
        positions: Int[Tensor, "batch n"],
    ) -> SteppedState:
        """One memory step with the pooled `values`; the read tokens (at position 0)."""
        if self.to_interface is None:
            interface = values.new_zeros(values.shape[0], 0)
        else:
            interface = self.to_interface(self.norm(values).mean(dim=1))
        out, memory = self.memory(interface, state["memory"])
        tokens = self.to_tokens(out).unflatten(-1, (self.tokens, -1))
        return SteppedState(
            values=tokens,
            positions=torch.zeros(tokens.shape[:2], dtype=torch.long, device=tokens.device),
            memory=memory,
        )

    @staticmethod
    def detach_state(state: SteppedState) -> SteppedState:
        """The memory's state and the tokens cut from the graph."""
        return SteppedState(**detach_state(dict(state)))


def thinking_memory(spec: MemorySpec | dict[str, Any] | None, dim: int, capacity: int):
    """The Th1nker's memory: the latent FIFO of `capacity` vectors for `spec` None, else the
    library memory `spec` (a registered memory type) through `SteppedMemory`."""
    if spec is None:
        return LatentMemory(capacity)
    return SteppedMemory(memory_spec(spec).build(), dim)


def _smoke() -> None:
    torch.manual_seed(0)
    memory = thinking_memory({"type": "dnc", "slots": 8, "width": 8, "reads": 2}, 16, 0)
    latents = torch.randn(3, 5, 16)
    state = memory.init_state(latents)
    for _ in range(3):
        state = memory.append(state, latents, torch.zeros(3, 5, dtype=torch.long))
    assert state["values"].shape == (3, 2, 16)
    print(f"stepped DNC ok: tokens {tuple(state['values'].shape)}")


if __name__ == "__main__":
    _smoke()
