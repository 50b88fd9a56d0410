"""A DNC: a controller driving a DNC memory (Graves et al. 2016), run over sequences.

Per step: controller([x_t, reads_{t-1}]) -> h; memory(W_interface h) -> reads_t;
y_t = W_out [h, reads_t]. The previous read vectors are the network's own state.

Run `python -m th1nker.memory.dnc_network` for a smoke check.
"""

from __future__ import annotations

from typing import TypedDict

import torch
from jaxtyping import Float
from torch import Tensor, nn

from th1nker.memory.controllers import CONTROLLERS
from th1nker.memory.dnc import DNCMemory
from th1nker.memory.state import Recurrent


class ReadsState(TypedDict):
    reads: Float[Tensor, "batch reads_width"]


class DNC(Recurrent):
    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden: int = 64,
        controller: str = "lstm",
        slots: int = 16,
        width: int = 16,
        reads: int = 1,
        writes: int = 1,
        flags: dict | None = None,
    ):
        super().__init__()
        if controller not in CONTROLLERS:
            raise ValueError(f"controller {controller!r} is not one of {', '.join(CONTROLLERS)}")
        self.memory = DNCMemory(slots, width, reads, writes, flags)
        self.controller = CONTROLLERS[controller](input_size + self.memory.output_size, hidden)
        self.to_interface = nn.Linear(hidden, self.memory.interface_size)
        self.to_output = nn.Linear(hidden + self.memory.output_size, output_size)

    def initial_state(self, batch_size: int, device: torch.device) -> ReadsState:
        return ReadsState(reads=torch.zeros(batch_size, self.memory.output_size, device=device))

    def forward(self, x: Float[Tensor, "batch input"]) -> Float[Tensor, "batch output"]:
        """One step."""
        h = self.controller(torch.cat((x, self.require_state()["reads"]), dim=-1))
        reads = self.memory(self.to_interface(h))
        self.state = ReadsState(reads=reads)
        return self.to_output(torch.cat((h, reads), dim=-1))


def _smoke() -> None:
    torch.manual_seed(0)
    dnc = DNC(input_size=6, output_size=4, hidden=16, slots=8, width=5, reads=2)
    out = dnc.run(torch.randn(3, 7, 6))
    out.sum().backward()
    assert out.shape == (3, 7, 4) and torch.isfinite(out).all()
    print(f"DNC ok: outputs {tuple(out.shape)}, {sum(p.numel() for p in dnc.parameters())} params")


if __name__ == "__main__":
    _smoke()
