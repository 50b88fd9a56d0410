"""Persistent memory (Titans' persistent memory; x-transformers' memory key/values; Sukhbaatar et
al. 2019): `slots` learned vectors that do not depend on the input, offered to whatever attends.

Its output is the slots themselves, `[batch, slots * width]`, the same for every row and step:
as the Th1nker's memory (`model.memory: {type: persistent}`) they are `slots` tokens its
latents attend to at every thinking step beside the input, so the model can keep task knowledge
(digit tables, primes) in them instead of in its weights. It takes no interface (width 0) and
has no state. The `attention` memory is the input-dependent reading of such slots (a query per
reader); this one leaves the reading to the attention that consumes it.

Run `python -m th1nker.memory.persistent` for a smoke check.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from jaxtyping import Float
from pydantic import Field
from torch import Tensor, nn

from th1nker.config_files import validate
from th1nker.memory.registry import MemorySpec, register_memory
from th1nker.memory.state import Stateful


@register_memory
class PersistentSpec(MemorySpec):
    """`slots` learned vectors of `width`, input independent."""

    keeps_state: ClassVar[bool] = False
    type: Literal["persistent"] = "persistent"
    slots: int = Field(8, ge=1)
    width: int = Field(16, ge=1)

    def build(self) -> PersistentMemory:
        return PersistentMemory(self)


class PersistentMemory(Stateful):
    """Output: the learned slots [batch, slots * width]; `reads` = slots (one token each)."""

    interface_size = 0

    def __init__(self, spec: PersistentSpec | None = None, **fields):
        """From a spec, or from its fields (`PersistentMemory(slots=4, width=8)`)."""
        super().__init__()
        spec = spec or validate(PersistentSpec, fields, "persistent memory")
        self.spec, self.reads = spec, spec.slots
        self.slots = nn.Parameter(torch.randn(spec.slots, spec.width) / math.sqrt(spec.width))
        self.output_size = spec.slots * spec.width

    def forward(
        self, interface: Float[Tensor, "batch interface"], state: dict
    ) -> tuple[Float[Tensor, "batch output"], dict]:
        return self.slots.flatten().expand(interface.shape[0], -1), state


def _smoke() -> None:
    memory = PersistentMemory(slots=4, width=8)
    out, _ = memory(torch.zeros(3, 0), memory.init_state(3))
    assert out.shape == (3, 32) and torch.equal(out[0], out[2])
    print(f"persistent memory ok: {tuple(out.shape)}, the same for every row")


if __name__ == "__main__":
    _smoke()
