"""The NTM memory (Graves et al. 2014): content and location addressing, erase and add.

Each head finds its weighting in four moves (paper, section 3.3; formulas in `addressing.py`):
content `w_c = softmax(beta cos(k, M))`, interpolation with its previous weighting
`w_g = g w_c + (1 - g) w_{t-1}`, a circular shift `w~ = w_g * s` (s: softmax over shifts
-1, 0, +1) and sharpening `w = w~^gamma / sum w~^gamma`. Writers then erase and add, readers read
the written memory (writes first, like the DNC here). Each head keeps its weighting in its own
state; the memory's state is the matrix alone.

Run `python -m th1nker.memory.ntm` for a smoke check.
"""

from __future__ import annotations

from typing import TypedDict

import torch
from jaxtyping import Float
from torch import Tensor

from th1nker.memory import addressing
from th1nker.memory.flags import MemoryFlags, gate, sharpness, strength
from th1nker.memory.heads import HeadMemory
from th1nker.memory.state import Stateful

SHIFTS = 3  # -1, 0, +1


class NTMMemoryState(TypedDict):
    memory: Float[Tensor, "batch slots width"]


class NTMHeadState(TypedDict):
    weights: Float[Tensor, "batch slots"]


class NTMHead(Stateful):
    """Addressing shared by NTM readers and writers. Interface: key W, strength 1,
    interpolation gate 1, shift 3, sharpening 1 (writers add erase W and add W).

    A head starts from a learned weighting softmax(`start`), `start` drawn uniform in
    +-sqrt(6 / (slots + 1)) (as Collier & Beel 2018). It must not start uniform (or zero): every
    NTM operation treats the slots alike, so from a constant memory a uniform head writes the same
    into every slot forever and the memory acts as a single slot (tested)."""

    def __init__(self, slots: int, width: int, flags: MemoryFlags):
        super().__init__()
        self.slots, self.width, self.flags = slots, width, flags
        self.address_size = width + 3 + SHIFTS
        bound = (6 / (slots + 1)) ** 0.5
        self.start = torch.nn.Parameter(torch.empty(slots).uniform_(-bound, bound))

    def initial_state(self, batch_size: int, device: torch.device) -> NTMHeadState:
        start = torch.softmax(self.start, dim=-1).to(device)
        return NTMHeadState(weights=start.expand(batch_size, self.slots))

    def address(
        self, interface: Float[Tensor, "batch size"], memory: Float[Tensor, "batch slots width"]
    ) -> Float[Tensor, "batch slots"]:
        """The head's new weighting (kept in its state)."""
        key, beta, interpolation, shift, gamma = interface[:, : self.address_size].split(
            [self.width, 1, 1, SHIFTS, 1], dim=-1
        )
        content = addressing.content_weighting(memory, key[:, None], strength(beta, self.flags))
        g = gate(interpolation, self.flags)
        gated = g * content[:, 0] + (1 - g) * self.require_state()["weights"]
        shifted = addressing.shift_weighting(gated[:, None], torch.softmax(shift, -1)[:, None])
        weights = addressing.sharpen(shifted, sharpness(gamma, self.flags)[:, 0:1])[:, 0]
        self.state = NTMHeadState(weights=weights)
        return weights


class NTMReader(NTMHead):
    def __init__(self, slots: int, width: int, flags: MemoryFlags):
        super().__init__(slots, width, flags)
        self.interface_size = self.address_size

    def read(
        self, interface: Float[Tensor, "batch size"], memory: Float[Tensor, "batch slots width"]
    ) -> Float[Tensor, "batch width"]:
        weights = self.address(interface, memory)
        return torch.einsum("bn,bnw->bw", weights, memory)


class NTMWriter(NTMHead):
    def __init__(self, slots: int, width: int, flags: MemoryFlags):
        super().__init__(slots, width, flags)
        self.interface_size = self.address_size + 2 * width

    def write(
        self, interface: Float[Tensor, "batch size"], memory: Float[Tensor, "batch slots width"]
    ) -> Float[Tensor, "batch slots width"]:
        weights = self.address(interface, memory)
        erase, add = interface[:, self.address_size :].split([self.width, self.width], dim=-1)
        if self.flags.erase:
            memory = memory * (1 - weights[..., None] * torch.sigmoid(erase)[:, None, :])
        return memory + weights[..., None] * add[:, None, :]


class NTMMemory(HeadMemory):
    """N slots of width W with `writes` write heads and `reads` read heads."""

    name = "NTM memory"

    writer, reader = NTMWriter, NTMReader

    def initial_state(self, batch_size: int, device: torch.device) -> NTMMemoryState:
        return NTMMemoryState(memory=self.fresh_memory(batch_size, device))

    def forward(self, interface: Float[Tensor, "batch interface"]) -> Float[Tensor, "batch output"]:
        write_slices, read_slices = self.split_interface(interface)
        memory = self.require_state()["memory"]
        for writer, piece in zip(self.writers, write_slices, strict=True):
            memory = writer.write(piece, memory)
        reads = [r.read(s, memory) for r, s in zip(self.readers, read_slices, strict=True)]
        self.state = NTMMemoryState(memory=memory)
        return self.readout(torch.cat(reads, dim=-1), interface)


def _smoke() -> None:
    torch.manual_seed(0)
    memory = NTMMemory(slots=8, width=4, reads=2, writes=1)
    memory.init_state(batch_size=3)
    for _ in range(5):
        reads = memory(torch.randn(3, memory.interface_size))
    assert reads.shape == (3, 8) and torch.isfinite(reads).all()
    print(f"NTM memory ok: reads {tuple(reads.shape)}")


if __name__ == "__main__":
    _smoke()
