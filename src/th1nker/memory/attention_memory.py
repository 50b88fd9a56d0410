"""A read-only key/value memory: learned (persistent) slots that readers attend to.

Nothing erases or writes it: its keys [slots, key_width] and values [slots, width] are
parameters, trained like any other weight (a persistent memory, as in Sukhbaatar et al. 2019).
Each reader sends a query through the interface and reads `softmax(q K^T / sqrt(d)) V`, or, with
the `top_k` flag, the softmax over its k best-matching slots only. The state is the readers'
last weightings (for inspection; reading does not depend on them).

Run `python -m th1nker.memory.attention_memory` for a smoke check.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal, TypedDict

import torch
from jaxtyping import Float
from pydantic import Field
from torch import Tensor, nn

from th1nker.config_files import validate
from th1nker.memory.flags import AttentionFlags
from th1nker.memory.readout import ReadOut
from th1nker.memory.registry import MemorySpec, register_memory
from th1nker.memory.state import Stateful


class AttentionMemoryState(TypedDict):
    read_weights: Float[Tensor, "batch reads slots"]


@register_memory
class AttentionSpec(MemorySpec):
    """`slots` learned key/value pairs of width `width` (keys: `key_width`, default width)."""

    keeps_state: ClassVar[bool] = False  # read-only: nothing carries over
    type: Literal["attention"] = "attention"
    slots: int = Field(16, ge=1)
    width: int = Field(16, ge=1)
    reads: int = Field(1, ge=1)
    key_width: int | None = Field(None, ge=1)
    flags: AttentionFlags = Field(default_factory=AttentionFlags)

    def build(self) -> AttentionMemory:
        return AttentionMemory(self)


class AttentionMemory(Stateful):
    """`slots` learned key/value pairs read by `reads` readers (one query each); no writers."""

    def __init__(self, spec: AttentionSpec | None = None, **fields):
        """From a spec, or from its fields (`AttentionMemory(slots=8, flags={"top_k": 2})`)."""
        super().__init__()
        spec = spec or validate(AttentionSpec, fields, "attention memory")
        self.spec, self.flags, self.reads, self.slots = spec, spec.flags, spec.reads, spec.slots
        key_width = spec.key_width or spec.width
        self.keys = nn.Parameter(torch.randn(spec.slots, key_width) / math.sqrt(key_width))
        self.values = nn.Parameter(torch.randn(spec.slots, spec.width) / math.sqrt(spec.width))
        self.key_width = key_width
        self.interface_size = spec.reads * key_width
        self.readout = ReadOut(spec.reads, spec.width, self.interface_size, self.flags)
        self.output_size = self.readout.size

    def initial_state(self, batch_size: int, device: torch.device) -> AttentionMemoryState:
        return AttentionMemoryState(
            read_weights=torch.zeros(batch_size, self.reads, self.slots, device=device)
        )

    def forward(
        self, interface: Float[Tensor, "batch interface"], state: AttentionMemoryState
    ) -> tuple[Float[Tensor, "batch output"], AttentionMemoryState]:
        if interface.shape[-1] != self.interface_size:
            raise ValueError(
                f"attention memory: interface has {interface.shape[-1]} features, expected "
                f"{self.interface_size}"
            )
        queries = interface.unflatten(-1, (self.reads, self.key_width))
        scores = queries @ self.keys.T / math.sqrt(self.key_width)
        k = self.flags.top_k
        if k and k < self.slots:
            threshold = scores.topk(k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < threshold, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        reads = (weights @ self.values).flatten(1)
        return self.readout(reads, interface), AttentionMemoryState(read_weights=weights)


def _smoke() -> None:
    memory = AttentionMemory(slots=8, width=4, reads=2, flags={"top_k": 2})
    reads, state = memory(torch.randn(3, memory.interface_size), memory.init_state(3))
    assert reads.shape == (3, 8)
    assert ((state["read_weights"] > 0).sum(-1) == 2).all()
    print(f"attention memory ok: reads {tuple(reads.shape)}, top-2 weights")


if __name__ == "__main__":
    _smoke()
