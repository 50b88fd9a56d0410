"""What memories with read and write heads share: their fields, building the heads, splitting
the controller's interface vector among them, the starting contents (`init` flag) and the
read-out (`normalize`, `dropout`, `pass_through` flags)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from pydantic import Field
from torch import Tensor

from th1nker.config_files import validate
from th1nker.memory.flags import WritableFlags
from th1nker.memory.readout import ReadOut
from th1nker.memory.registry import MemorySpec
from th1nker.memory.state import Stateful


class HeadMemorySpec(MemorySpec):
    """N slots of width W, `reads` read heads and `writes` write heads."""

    slots: int = Field(16, ge=1)
    width: int = Field(16, ge=1)
    reads: int = Field(1, ge=1)
    writes: int = Field(1, ge=1)


class HeadMemory(Stateful):
    """N slots of width W with `writes` writer and `reads` reader heads (their classes are the
    subclass's `writer` and `reader`), typed flags, and the interface layout: writers' slices,
    then readers'. The heads' weightings of the last step are part of the memory's state
    (`write_weights`, `read_weights` [batch, heads, slots])."""

    name: str = "memory"
    spec_class: type[HeadMemorySpec]
    writer: type
    reader: type

    def __init__(self, spec: HeadMemorySpec | None = None, **fields):
        """From a spec, or from its fields (`DNCMemory(slots=8, width=4, flags={...})`)."""
        super().__init__()
        spec = spec or validate(self.spec_class, fields, self.name)
        self.spec, self.slots, self.width, self.reads = spec, spec.slots, spec.width, spec.reads
        self.flags: WritableFlags = spec.flags
        self.writers = torch.nn.ModuleList(
            self.writer(spec.slots, spec.width, self.flags) for _ in range(spec.writes)
        )
        self.readers = torch.nn.ModuleList(
            self.reader(spec.slots, spec.width, self.flags) for _ in range(spec.reads)
        )
        self.interface_sizes = [h.interface_size for h in (*self.writers, *self.readers)]
        self.interface_size = sum(self.interface_sizes)
        self.readout = ReadOut(spec.reads, spec.width, self.interface_size, self.flags)
        self.output_size = self.readout.size
        if self.flags.init == "learned":
            self.initial_memory = torch.nn.Parameter(torch.randn(spec.slots, spec.width) * 0.01)

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
