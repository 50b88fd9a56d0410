"""The NTM memory (Graves et al. 2014): content and location addressing, erase and add.

Each head finds its weighting in four moves (paper, section 3.3; formulas in `addressing.py`):
content `w_c = softmax(beta cos(k, M))`, interpolation with its previous weighting
`w_g = g w_c + (1 - g) w_{t-1}`, a circular shift `w~ = w_g * s` (s: softmax over shifts
-1, 0, +1) and sharpening `w = w~^gamma / sum w~^gamma`. Writers then erase and add, readers read
the written memory (writes first, like the DNC here). The state is the matrix and every head's
last weighting.

Run `python -m th1nker.memory.ntm` for a smoke check.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import torch
from jaxtyping import Float
from pydantic import Field
from torch import Tensor, nn

from th1nker.memory import addressing
from th1nker.memory.flags import NTMFlags, gate, sharpness, strength
from th1nker.memory.heads import HeadMemory, HeadMemorySpec
from th1nker.memory.registry import register_memory

SHIFTS = 3  # -1, 0, +1


class NTMMemoryState(TypedDict):
    memory: Float[Tensor, "batch slots width"]
    write_weights: Float[Tensor, "batch writes slots"]
    read_weights: Float[Tensor, "batch reads slots"]


@register_memory
class NTMSpec(HeadMemorySpec):
    type: Literal["ntm"] = "ntm"
    flags: NTMFlags = Field(default_factory=NTMFlags)

    def build(self) -> NTMMemory:
        return NTMMemory(self)


class NTMHead(nn.Module):
    """Addressing shared by NTM readers and writers. Interface: key W, strength 1,
    interpolation gate 1, shift 3, sharpening 1 (writers add erase W and add W).

    A head starts from a learned weighting softmax(`start`), `start` drawn uniform in
    +-sqrt(6 / (slots + 1)) (as Collier & Beel 2018). It must not start uniform (or zero): every
    NTM operation treats the slots alike, so from a constant memory a uniform head writes the same
    into every slot forever and the memory acts as a single slot (tested)."""

    def __init__(self, slots: int, width: int, flags: NTMFlags):
        super().__init__()
        self.slots, self.width, self.flags = slots, width, flags
        self.address_size = width + 3 + SHIFTS
        bound = (6 / (slots + 1)) ** 0.5
        self.start = nn.Parameter(torch.empty(slots).uniform_(-bound, bound))

    def start_weights(self, batch_size: int, device: torch.device) -> Float[Tensor, "batch slots"]:
        return torch.softmax(self.start, dim=-1).to(device).expand(batch_size, self.slots)

    def address(
        self,
        interface: Float[Tensor, "batch size"],
        memory: Float[Tensor, "batch slots width"],
        previous: Float[Tensor, "batch slots"],
    ) -> Float[Tensor, "batch slots"]:
        """The head's new weighting, from its `previous` one."""
        key, beta, interpolation, shift, gamma = interface[:, : self.address_size].split(
            [self.width, 1, 1, SHIFTS, 1], dim=-1
        )
        content = addressing.content_weighting(memory, key[:, None], strength(beta, self.flags))
        g = gate(interpolation, self.flags)
        gated = g * content[:, 0] + (1 - g) * previous
        shifted = addressing.shift_weighting(gated[:, None], torch.softmax(shift, -1)[:, None])
        return addressing.sharpen(shifted, sharpness(gamma, self.flags)[:, 0:1])[:, 0]


class NTMReader(NTMHead):
    def __init__(self, slots: int, width: int, flags: NTMFlags):
        super().__init__(slots, width, flags)
        self.interface_size = self.address_size


class NTMWriter(NTMHead):
    def __init__(self, slots: int, width: int, flags: NTMFlags):
        super().__init__(slots, width, flags)
        self.interface_size = self.address_size + 2 * width

    def write(
        self,
        interface: Float[Tensor, "batch size"],
        memory: Float[Tensor, "batch slots width"],
        weights: Float[Tensor, "batch slots"],
    ) -> Float[Tensor, "batch slots width"]:
        """The memory after erasing and adding at `weights` (this head's new weighting)."""
        erase, add = interface[:, self.address_size :].split([self.width, self.width], dim=-1)
        if self.flags.erase:
            memory = memory * (1 - weights[..., None] * torch.sigmoid(erase)[:, None, :])
        return memory + weights[..., None] * add[:, None, :]


class NTMMemory(HeadMemory):
    """N slots of width W with `writes` write heads and `reads` read heads."""

    name = "NTM memory"
    spec_class = NTMSpec
    writer, reader = NTMWriter, NTMReader

    def initial_state(self, batch_size: int, device: torch.device) -> NTMMemoryState:
        return NTMMemoryState(
            memory=self.fresh_memory(batch_size, device),
            write_weights=torch.stack(
                [h.start_weights(batch_size, device) for h in self.writers], dim=1
            ),
            read_weights=torch.stack(
                [h.start_weights(batch_size, device) for h in self.readers], dim=1
            ),
        )

    def forward(
        self, interface: Float[Tensor, "batch interface"], state: NTMMemoryState
    ) -> tuple[Float[Tensor, "batch output"], NTMMemoryState]:
        write_slices, read_slices = self.split_interface(interface)
        memory, write_weights, read_weights = state["memory"], [], []
        for i, (writer, piece) in enumerate(zip(self.writers, write_slices, strict=True)):
            weights = writer.address(piece, memory, state["write_weights"][:, i])
            memory = writer.write(piece, memory, weights)
            write_weights.append(weights)
        for i, (reader, piece) in enumerate(zip(self.readers, read_slices, strict=True)):
            read_weights.append(reader.address(piece, memory, state["read_weights"][:, i]))
        read = torch.stack(read_weights, dim=1)
        reads = torch.einsum("brn,bnw->brw", read, memory).flatten(1)
        new_state = NTMMemoryState(
            memory=memory, write_weights=torch.stack(write_weights, dim=1), read_weights=read
        )
        return self.readout(reads, interface), new_state


def _smoke() -> None:
    torch.manual_seed(0)
    memory = NTMMemory(slots=8, width=4, reads=2, writes=1)
    state = memory.init_state(batch_size=3)
    for _ in range(5):
        reads, state = memory(torch.randn(3, memory.interface_size), state)
    assert reads.shape == (3, 8) and torch.isfinite(reads).all()
    print(f"NTM memory ok: reads {tuple(reads.shape)}")


if __name__ == "__main__":
    _smoke()
