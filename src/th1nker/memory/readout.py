"""What every memory does to its read vectors before returning them, by its flags:
normalization (each read vector over its width), dropout, and pass-through (the interface input
appended after the reads)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from th1nker.memory.flags import ReadOutFlags

NORMS = {"none": nn.Identity, "layer": nn.LayerNorm, "rms": nn.RMSNorm}


class ReadOut(nn.Module):
    """reads [batch, reads * width] (+ interface) -> output [batch, size]."""

    def __init__(self, reads: int, width: int, interface_size: int, flags: ReadOutFlags):
        super().__init__()
        self.reads, self.width, self.pass_through = reads, width, flags.pass_through
        self.norm = NORMS[flags.normalize](width)
        self.dropout = nn.Dropout(flags.dropout)
        self.size = reads * width + (interface_size if flags.pass_through else 0)

    def forward(
        self,
        reads: Float[Tensor, "batch reads_width"],
        interface: Float[Tensor, "batch interface"],
    ) -> Float[Tensor, "batch size"]:
        per_read = reads.unflatten(-1, (self.reads, self.width))
        out = self.dropout(self.norm(per_read)).flatten(1)
        return torch.cat((out, interface), dim=-1) if self.pass_through else out
