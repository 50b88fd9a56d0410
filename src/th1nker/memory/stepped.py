"""Any library memory (DNC, NTM, attention) as the Th1nker's memory, in place of the latent FIFO.

The Th1nker asks its memory for three things (`latent.LatentMemory` is the default one):
`init_state(latents)`, `append(state, latents, positions)` once per thinking step, and
`detach_state(state)`; the latents then attend to `state["values"]` at `state["positions"]`.
`SteppedMemory` gives a step-wise memory that interface:

    interface = W_i mean_j LayerNorm(latents[:, j])        # [batch, interface]
    out       = memory(interface)                           # one memory step: write, then read
    values    = W_o out, viewed as [batch, reads, dim]      # one token per read head

so each thinking step writes the (pooled) latents into the memory and the latents of that step
attend to what the read heads return. The memory's own state (matrix, usage, links, head
weightings) lives in the memory module and is begun afresh by `init_state` at the start of every
`think`; the dict passed around holds the read tokens only.

Run `python -m th1nker.memory.stepped` for a smoke check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from th1nker.memory.latent import LatentMemory, MemoryState
from th1nker.memory.network import MEMORIES, module_spec
from th1nker.memory.state import Stateful


class SteppedMemory(nn.Module):
    """A Stateful memory with `interface_size` inputs and `output_size` outputs per step, seen by
    the latents (width `dim`) as one token per read head."""

    def __init__(self, memory: Stateful, dim: int):
        super().__init__()
        self.memory = memory
        self.tokens = len(memory.readers)
        self.norm = nn.LayerNorm(dim)
        self.to_interface = nn.Linear(dim, memory.interface_size)
        self.to_tokens = nn.Linear(memory.output_size, self.tokens * dim)

    def init_state(self, like: Float[Tensor, "batch n dim"]) -> MemoryState:
        """A fresh memory for the batch and device of `like`; no tokens yet."""
        self.memory.init_state(like.shape[0], like.device)
        return LatentMemory.init_state(like)

    def append(
        self,
        state: MemoryState,
        values: Float[Tensor, "batch n dim"],
        positions: Int[Tensor, "batch n"],
    ) -> MemoryState:
        """One memory step with the pooled `values`; the read tokens (at position 0)."""
        out = self.memory(self.to_interface(self.norm(values).mean(dim=1)))
        tokens = self.to_tokens(out).unflatten(-1, (self.tokens, -1))
        return MemoryState(
            values=tokens,
            positions=torch.zeros(tokens.shape[:2], dtype=torch.long, device=tokens.device),
        )

    def detach_state(self, state: MemoryState) -> MemoryState:
        """Cut the memory's state and the tokens from the graph."""
        self.memory.detach_state()
        return LatentMemory.detach_state(state)


def thinking_memory(spec: dict[str, Any] | None, dim: int, capacity: int):
    """The Th1nker's memory: the latent FIFO of `capacity` vectors for `spec` None, else the
    library memory `spec` ({type: dnc | ntm | attention, its fields}) through `SteppedMemory`."""
    if spec is None:
        return LatentMemory(capacity)
    fields = check_memory_spec(spec)
    params = {k: v for k, v in fields.items() if k != "type"}
    return SteppedMemory(MEMORIES[fields["type"]](**params), dim)


def check_memory_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec, checked: a ConfigError naming `model.memory` and the allowed types/fields."""
    return module_spec("model.memory", spec, Path("."), MEMORIES)


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
