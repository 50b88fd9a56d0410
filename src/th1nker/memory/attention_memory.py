"""A read-only key/value memory: learned (persistent) slots that readers attend to.

Nothing erases or writes it: its keys [slots, key_width] and values [slots, width] are
parameters, trained like any other weight (a persistent memory, as in Sukhbaatar et al. 2019).
Each reader sends a query through the interface and reads `softmax(q K^T / sqrt(d)) V`, or, with
the `top_k` flag, the softmax over its k best-matching slots only. Readers keep their last
weighting in their own state.

Run `python -m th1nker.memory.attention_memory` for a smoke check.
"""

from __future__ import annotations

import math
from typing import TypedDict

import torch
from jaxtyping import Float
from torch import Tensor, nn

from th1nker.config_files import ConfigError
from th1nker.memory.flags import MemoryFlags, resolve_flags
from th1nker.memory.readout import ReadOut
from th1nker.memory.state import Stateful


class AttentionReaderState(TypedDict):
    weights: Float[Tensor, "batch slots"]


class AttentionReader(Stateful):
    """One query per step. Interface: the query (key_width)."""

    def __init__(self, slots: int, key_width: int, flags: MemoryFlags):
        super().__init__()
        self.slots, self.interface_size, self.flags = slots, key_width, flags

    def initial_state(self, batch_size: int, device: torch.device) -> AttentionReaderState:
        return AttentionReaderState(weights=torch.zeros(batch_size, self.slots, device=device))

    def read(
        self,
        query: Float[Tensor, "batch key_width"],
        keys: Float[Tensor, "slots key_width"],
        values: Float[Tensor, "slots width"],
    ) -> Float[Tensor, "batch width"]:
        scores = query @ keys.T / math.sqrt(keys.shape[-1])
        k = self.flags.top_k
        if k and k < self.slots:
            threshold = scores.topk(k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < threshold, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        self.state = AttentionReaderState(weights=weights)
        return weights @ values


class AttentionMemory(Stateful):
    """`slots` learned key/value pairs read by `reads` readers; no writers (read-only)."""

    def __init__(
        self,
        slots: int = 16,
        width: int = 16,
        reads: int = 1,
        key_width: int | None = None,
        flags: dict | MemoryFlags | None = None,
    ):
        super().__init__()
        if min(slots, width, reads) < 1:
            raise ValueError(f"attention memory: slots, width, reads must be >= 1, got {slots}, "
                             f"{width}, {reads}")  # fmt: skip
        key_width = key_width or width
        self.flags = resolve_flags(flags)
        if "init" in self.flags.model_fields_set:
            raise ConfigError("attention memory: flag init does not apply (its slots are learned)")
        self.keys = nn.Parameter(torch.randn(slots, key_width) / math.sqrt(key_width))
        self.values = nn.Parameter(torch.randn(slots, width) / math.sqrt(width))
        self.readers = nn.ModuleList(
            AttentionReader(slots, key_width, self.flags) for _ in range(reads)
        )
        self.interface_size = reads * key_width
        self.readout = ReadOut(reads, width, self.interface_size, self.flags)
        self.output_size = self.readout.size

    def forward(self, interface: Float[Tensor, "batch interface"]) -> Float[Tensor, "batch output"]:
        if interface.shape[-1] != self.interface_size:
            raise ValueError(
                f"attention memory: interface has {interface.shape[-1]} features, expected "
                f"{self.interface_size}"
            )
        queries = interface.chunk(len(self.readers), dim=-1)
        reads = [
            r.read(q, self.keys, self.values) for r, q in zip(self.readers, queries, strict=True)
        ]
        return self.readout(torch.cat(reads, dim=-1), interface)


def _smoke() -> None:
    memory = AttentionMemory(slots=8, width=4, reads=2, flags={"top_k": 2})
    memory.init_state(3)
    reads = memory(torch.randn(3, memory.interface_size))
    assert reads.shape == (3, 8)
    assert ((memory.readers[0].state["weights"] > 0).sum(-1) == 2).all()
    print(f"attention memory ok: reads {tuple(reads.shape)}, top-2 weights")


if __name__ == "__main__":
    _smoke()
