"""The DNC memory (Graves et al. 2016): content and allocation-based writing, temporal links,
forward / backward / content reading. Formulas in `addressing.py`.

A controller talks to it only through an *interface vector* [batch, interface_size]; the memory
splits it among its writers and readers (each owns its slice and its own state), and returns the
read vectors [batch, reads * width]. Per step, as in the paper: usage is updated with the free
gates, then every writer writes (allocation from the current usage, then erase and add, then
precedence and links), then every reader reads from the written memory.

Run `python -m th1nker.memory.dnc` for a smoke check.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import torch
from jaxtyping import Float
from torch import Tensor

from th1nker.memory import addressing
from th1nker.memory.flags import MemoryFlags, gate, strength
from th1nker.memory.heads import HeadMemory
from th1nker.memory.state import Stateful


class DNCMemoryState(TypedDict):
    memory: Float[Tensor, "batch slots width"]
    usage: Float[Tensor, "batch slots"]
    link: Float[Tensor, "batch slots slots"]
    precedence: Float[Tensor, "batch slots"]
    debug_write_weights: NotRequired[Float[Tensor, "batch writes slots"]]
    debug_read_weights: NotRequired[Float[Tensor, "batch reads slots"]]


class HeadState(TypedDict):
    weights: Float[Tensor, "batch slots"]  # the head's last weighting


class DNCWriter(Stateful):
    """One write head. Interface: key W, strength 1, erase W, write vector W, allocation gate 1,
    write gate 1."""

    def __init__(self, slots: int, width: int, flags: MemoryFlags):
        super().__init__()
        self.slots, self.width, self.flags = slots, width, flags
        self.interface_size = 3 * width + 3

    def initial_state(self, batch_size: int, device: torch.device) -> HeadState:
        return HeadState(weights=torch.zeros(batch_size, self.slots, device=device))

    def write(
        self, interface: Float[Tensor, "batch size"], memory: DNCMemoryState
    ) -> DNCMemoryState:
        """The memory after this head's write (its weighting kept in its own state)."""
        w = self.width
        key, beta, erase, vector, gates = interface.split([w, 1, w, w, 2], dim=-1)
        content = addressing.content_weighting(
            memory["memory"], key[:, None], strength(beta, self.flags)
        )[:, 0]
        allocation = addressing.allocation_weighting(memory["usage"])
        if self.flags.gating:
            allocation_gate, write_gate = gate(gates, self.flags).unbind(-1)
        else:
            allocation_gate = write_gate = torch.ones_like(gates[:, 0])
        weights = write_gate[:, None] * (
            allocation_gate[:, None] * allocation + (1 - allocation_gate[:, None]) * content
        )
        kept = memory["memory"]
        if self.flags.erase:
            kept = kept * (1 - weights[..., None] * torch.sigmoid(erase)[:, None, :])
        self.state = HeadState(weights=weights)
        return DNCMemoryState(
            memory=kept + weights[..., None] * vector[:, None, :],
            usage=memory["usage"] + weights - memory["usage"] * weights,
            link=addressing.update_link(memory["link"], memory["precedence"], weights),
            precedence=addressing.update_precedence(memory["precedence"], weights),
        )


class DNCReader(Stateful):
    """One read head. Interface: key W, strength 1, free gate 1, read modes 3 (backward,
    content, forward). The memory reads for all its readers at once (`DNCMemory._read`), each
    reader keeping its own weighting."""

    def __init__(self, slots: int, width: int, flags: MemoryFlags):
        super().__init__()
        self.slots, self.width, self.flags = slots, width, flags
        self.interface_size = width + 5

    def initial_state(self, batch_size: int, device: torch.device) -> HeadState:
        return HeadState(weights=torch.zeros(batch_size, self.slots, device=device))

    def free_gate(self, interface: Float[Tensor, "batch size"]) -> Float[Tensor, " batch"]:
        return gate(interface[:, self.width + 1], self.flags)


class DNCMemory(HeadMemory):
    """N slots of width W with `writes` write heads and `reads` read heads."""

    name = "DNC memory"

    writer, reader = DNCWriter, DNCReader

    def initial_state(self, batch_size: int, device: torch.device) -> DNCMemoryState:
        n = self.slots
        state = DNCMemoryState(
            memory=self.fresh_memory(batch_size, device),
            usage=torch.zeros(batch_size, n, device=device),
            link=torch.zeros(batch_size, n, n, device=device),
            precedence=torch.zeros(batch_size, n, device=device),
        )
        if self.flags.debug:
            state["debug_write_weights"] = torch.zeros(
                batch_size, len(self.writers), n, device=device
            )
            state["debug_read_weights"] = torch.zeros(
                batch_size, len(self.readers), n, device=device
            )
        return state

    def forward(self, interface: Float[Tensor, "batch interface"]) -> Float[Tensor, "batch output"]:
        """One step: free, write, read. Returns the read vectors, concatenated, read out by the
        flags (`ReadOut`)."""
        write_slices, read_slices = self.split_interface(interface)
        state = self.require_state()
        free_gates = torch.stack(
            [r.free_gate(s) for r, s in zip(self.readers, read_slices, strict=True)], dim=1
        )
        previous_reads = torch.stack([r.require_state()["weights"] for r in self.readers], dim=1)
        memory = DNCMemoryState(
            memory=state["memory"],
            usage=state["usage"] * addressing.retention(free_gates, previous_reads),
            link=state["link"],
            precedence=state["precedence"],
        )
        for writer, piece in zip(self.writers, write_slices, strict=True):
            memory = writer.write(piece, memory)
        reads = self._read(read_slices, memory)
        if self.flags.debug:
            memory["debug_write_weights"] = torch.stack(
                [w.state["weights"] for w in self.writers], 1
            )
            memory["debug_read_weights"] = torch.stack(
                [r.state["weights"] for r in self.readers], 1
            )
        self.state = memory
        return self.readout(reads, interface)

    def _read(
        self, read_slices: tuple[Tensor, ...], memory: DNCMemoryState
    ) -> Float[Tensor, "batch reads_width"]:
        """w_r = pi_b b + pi_c c + pi_f f for every reader at once; r = M^T w_r."""
        key, beta, _, modes = torch.stack(read_slices, 1).split([self.width, 1, 1, 3], dim=-1)
        previous = torch.stack([r.require_state()["weights"] for r in self.readers], dim=1)
        forward, backward = addressing.directional_weightings(memory["link"], previous)
        content = addressing.content_weighting(
            memory["memory"], key, strength(beta[..., 0], self.flags)
        )
        backward_mode, content_mode, forward_mode = torch.softmax(modes, dim=-1).unbind(-1)
        weights = (
            backward_mode[..., None] * backward
            + content_mode[..., None] * content
            + forward_mode[..., None] * forward
        )
        for i, reader in enumerate(self.readers):
            reader.state = HeadState(weights=weights[:, i])
        return torch.einsum("brn,bnw->brw", weights, memory["memory"]).flatten(1)


def _smoke() -> None:
    torch.manual_seed(0)
    memory = DNCMemory(slots=8, width=4, reads=2, writes=1, flags={"debug": True})
    memory.init_state(batch_size=3)
    for _ in range(5):
        reads = memory(torch.randn(3, memory.interface_size))
    assert reads.shape == (3, 8) and torch.isfinite(reads).all()
    assert memory.state["usage"].max() <= 1 + 1e-6
    print(f"DNC memory ok: reads {tuple(reads.shape)}, usage {memory.state['usage'][0].tolist()}")


if __name__ == "__main__":
    _smoke()
