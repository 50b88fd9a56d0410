"""The DNC memory (Graves et al. 2016): content and allocation-based writing, temporal links,
forward / backward / content reading. Formulas in `addressing.py`.

A controller talks to it only through an *interface vector* [batch, interface_size]; the memory
splits it among its writers and readers and returns the read vectors [batch, reads * width].
Per step, as in the paper: usage is updated with the free gates (retention), then every writer
writes (allocation from the current usage, then erase and add, then precedence and links; its
write raises the usage), then every reader reads from the written memory.

Run `python -m th1nker.memory.dnc` for a smoke check.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import torch
from jaxtyping import Float
from pydantic import Field
from torch import Tensor, nn

from th1nker.memory import addressing
from th1nker.memory.flags import DNCFlags, gate, strength
from th1nker.memory.heads import HeadMemory, HeadMemorySpec
from th1nker.memory.registry import register_memory


class DNCMemoryState(TypedDict):
    memory: Float[Tensor, "batch slots width"]
    usage: Float[Tensor, "batch slots"]
    link: Float[Tensor, "batch slots slots"]
    precedence: Float[Tensor, "batch slots"]
    write_weights: Float[Tensor, "batch writes slots"]
    read_weights: Float[Tensor, "batch reads slots"]


@register_memory
class DNCSpec(HeadMemorySpec):
    type: Literal["dnc"] = "dnc"
    flags: DNCFlags = Field(default_factory=DNCFlags)

    def build(self) -> DNCMemory:
        return DNCMemory(self)


class DNCWriter(nn.Module):
    """One write head. Interface: key W, strength 1, erase W, write vector W, allocation gate 1,
    write gate 1."""

    def __init__(self, slots: int, width: int, flags: DNCFlags):
        super().__init__()
        self.slots, self.width, self.flags = slots, width, flags
        self.interface_size = 3 * width + 3

    def write(
        self,
        interface: Float[Tensor, "batch size"],
        memory: Float[Tensor, "batch slots width"],
        usage: Float[Tensor, "batch slots"],
    ) -> tuple[Float[Tensor, "batch slots width"], Float[Tensor, "batch slots"]]:
        """(the memory after this head's write, the head's write weighting)."""
        w = self.width
        key, beta, erase, vector, gates = interface.split([w, 1, w, w, 2], dim=-1)
        content = addressing.content_weighting(memory, key[:, None], strength(beta, self.flags))
        allocation = addressing.allocation_weighting(usage)
        if self.flags.gating:
            allocation_gate, write_gate = gate(gates, self.flags).unbind(-1)
        else:
            allocation_gate = write_gate = torch.ones_like(gates[:, 0])
        weights = write_gate[:, None] * (
            allocation_gate[:, None] * allocation + (1 - allocation_gate[:, None]) * content[:, 0]
        )
        if self.flags.erase:
            memory = memory * (1 - weights[..., None] * torch.sigmoid(erase)[:, None, :])
        return memory + weights[..., None] * vector[:, None, :], weights


class DNCReader(nn.Module):
    """One read head. Interface: key W, strength 1, free gate 1, read modes 3 (backward,
    content, forward). The memory reads for all its readers at once (`DNCMemory._read`)."""

    def __init__(self, slots: int, width: int, flags: DNCFlags):
        super().__init__()
        self.slots, self.width, self.flags = slots, width, flags
        self.interface_size = width + 5

    def free_gate(self, interface: Float[Tensor, "batch size"]) -> Float[Tensor, " batch"]:
        return gate(interface[:, self.width + 1], self.flags)


class DNCMemory(HeadMemory):
    """N slots of width W with `writes` write heads and `reads` read heads."""

    name = "DNC memory"
    spec_class = DNCSpec
    writer, reader = DNCWriter, DNCReader

    def initial_state(self, batch_size: int, device: torch.device) -> DNCMemoryState:
        n = self.slots
        return DNCMemoryState(
            memory=self.fresh_memory(batch_size, device),
            usage=torch.zeros(batch_size, n, device=device),
            link=torch.zeros(batch_size, n, n, device=device),
            precedence=torch.zeros(batch_size, n, device=device),
            write_weights=torch.zeros(batch_size, len(self.writers), n, device=device),
            read_weights=torch.zeros(batch_size, len(self.readers), n, device=device),
        )

    def forward(
        self, interface: Float[Tensor, "batch interface"], state: DNCMemoryState
    ) -> tuple[Float[Tensor, "batch output"], DNCMemoryState]:
        """One step: free, write, read. Returns the read vectors, concatenated, read out by the
        flags (`ReadOut`), and the new state."""
        write_slices, read_slices = self.split_interface(interface)
        free_gates = torch.stack(
            [r.free_gate(s) for r, s in zip(self.readers, read_slices, strict=True)], dim=1
        )
        memory, link, precedence = state["memory"], state["link"], state["precedence"]
        usage = state["usage"] * addressing.retention(free_gates, state["read_weights"])
        write_weights = []
        for writer, piece in zip(self.writers, write_slices, strict=True):
            memory, weights = writer.write(piece, memory, usage)
            usage = addressing.raise_usage(usage, weights)
            link = addressing.update_link(link, precedence, weights)
            precedence = addressing.update_precedence(precedence, weights)
            write_weights.append(weights)
        read_weights = self._read_weights(read_slices, memory, link, state["read_weights"])
        reads = torch.einsum("brn,bnw->brw", read_weights, memory).flatten(1)
        new_state = DNCMemoryState(
            memory=memory,
            usage=usage,
            link=link,
            precedence=precedence,
            write_weights=torch.stack(write_weights, dim=1),
            read_weights=read_weights,
        )
        return self.readout(reads, interface), new_state

    def _read_weights(
        self,
        read_slices: tuple[Tensor, ...],
        memory: Float[Tensor, "batch slots width"],
        link: Float[Tensor, "batch slots slots"],
        previous: Float[Tensor, "batch reads slots"],
    ) -> Float[Tensor, "batch reads slots"]:
        """w_r = pi_b b + pi_c c + pi_f f for every reader at once."""
        key, beta, _, modes = torch.stack(read_slices, 1).split([self.width, 1, 1, 3], dim=-1)
        forward, backward = addressing.directional_weightings(link, previous)
        content = addressing.content_weighting(memory, key, strength(beta[..., 0], self.flags))
        backward_mode, content_mode, forward_mode = torch.softmax(modes, dim=-1).unbind(-1)
        return (
            backward_mode[..., None] * backward
            + content_mode[..., None] * content
            + forward_mode[..., None] * forward
        )


def _smoke() -> None:
    torch.manual_seed(0)
    memory = DNCMemory(slots=8, width=4, reads=2, writes=1)
    state = memory.init_state(batch_size=3)
    for _ in range(5):
        reads, state = memory(torch.randn(3, memory.interface_size), state)
    assert reads.shape == (3, 8) and torch.isfinite(reads).all()
    assert state["usage"].max() <= 1 + 1e-6
    print(f"DNC memory ok: reads {tuple(reads.shape)}, usage {state['usage'][0].tolist()}")


if __name__ == "__main__":
    _smoke()
