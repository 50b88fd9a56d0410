"""What memories with read and write heads share: building the heads, splitting the
controller's interface vector among them, the starting contents (`init` flag) and the read-out
(`normalize`, `dropout`, `pass_through` flags)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from th1nker.memory.flags import MemoryFlags, resolve_flags
from th1nker.memory.readout import ReadOut
from th1nker.memory.state import Stateful


class HeadMemory(Stateful):
    """N slots of width W with `writes` writer and `reads` reader heads (their classes are the
    subclass's `writer` and `reader`), validated flags, and the interface layout: writers'
    slices, then readers'."""

    name: str = "memory"
    writer: type
    reader: type

    def __init__(
        self,
        slots: int = 16,
        width: int = 16,
        reads: int = 1,
        writes: int = 1,
        flags: dict | MemoryFlags | None = None,
    ):
        super().__init__()
        if min(slots, width, reads, writes) < 1:
            raise ValueError(
                f"{self.name}: slots, width, reads, writes must be >= 1, got "
                f"{slots}, {width}, {reads}, {writes}"
            )
        self.slots, self.width = slots, width
        self.flags = resolve_flags(flags)
        self.writers = torch.nn.ModuleList(
            self.writer(slots, width, self.flags) for _ in range(writes)
        )
        self.readers = torch.nn.ModuleList(
            self.reader(slots, width, self.flags) for _ in range(reads)
        )
        self.interface_sizes = [h.interface_size for h in (*self.writers, *self.readers)]
        self.interface_size = sum(self.interface_sizes)
        self.readout = ReadOut(reads, width, self.interface_size, self.flags)
        self.output_size = self.readout.size
        if self.flags.init == "learned":
            self.initial_memory = torch.nn.Parameter(torch.randn(slots, width) * 0.01)

    def fresh_memory(
        self, batch_size: int, device: torch.device
    ) -> Float[Tensor, "batch slots width"]:
        """The memory matrix at the start of a sequence, by the `init` flag."""
        shape = (batch_size, self.slots, self.width)
        if self.flags.init == "learned":
            return self.initial_memory.to(device).expand(shape)
        if self.flags.init == "random":
            return torch.randn(shape, device=device) * 0.01
        return torch.full(shape, 1e-6, device=device)

    def split_interface(
        self, interface: Float[Tensor, "batch interface"]
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """(writers' slices, readers' slices); a clear error for a wrong width."""
        if interface.shape[-1] != self.interface_size:
            raise ValueError(
                f"{self.name}: interface has {interface.shape[-1]} features, expected "
                f"{self.interface_size} (writers' and readers' slices)"
            )
        slices = interface.split(self.interface_sizes, dim=-1)
        return slices[: len(self.writers)], slices[len(self.writers) :]
