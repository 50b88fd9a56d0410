"""Episodic memory: a bounded store of events (key, value, time) read back by top-k retrieval, so
that a model can recall one specific earlier event rather than a blend of everything it saw.

Every step stores one event, then reads:

1. write: the event (k_t, v_t, t) goes into an empty slot, or, once all `slots` are full, into
   the slot the `eviction` rule frees:
   - `oldest`: the smallest time (first in, first out);
   - `least_used`: the smallest usage, the sum of the read weights a slot has received since it
     was written (ties: the oldest);
   - `least_surprising`: the smallest surprise, ||r_t(k_t) - v_t|| measured when the event was
     written, with r_t(k_t) what the memory read for its key just before (an event the memory
     already predicted is the one to forget first; ties: the oldest);
2. read: each of `reads` queries scores the stored keys by q . k / sqrt(key_width), keeps its
   `top_k` best (0: all) and returns the softmax-weighted sum of their values.

Keys and values stay in the autograd graph (a read's gradient reaches the write that stored
it); the choice of slot is discrete. Run `python -m th1nker.memory.episodic` for a smoke check.
"""

from __future__ import annotations

import math
from typing import Literal, TypedDict

import torch
from jaxtyping import Float, Int
from pydantic import Field
from torch import Tensor

from th1nker.config_files import validate
from th1nker.memory.flags import ReadOutFlags
from th1nker.memory.readout import ReadOut
from th1nker.memory.registry import MemorySpec, register_memory
from th1nker.memory.state import Recurrent

EMPTY = -1  # the time of a slot that holds no event


class EpisodicState(TypedDict):
    keys: Float[Tensor, "batch slots key_width"]
    values: Float[Tensor, "batch slots width"]
    times: Int[Tensor, "batch slots"]  # the step that wrote each slot; EMPTY if none
    usage: Float[Tensor, "batch slots"]  # read weight received since written
    surprise: Float[Tensor, "batch slots"]  # ||read(k) - v|| when written
    read_weights: Float[Tensor, "batch reads slots"]
    step: Int[Tensor, " batch"]


@register_memory
class EpisodicSpec(MemorySpec):
    """Up to `slots` events of a `key_width` key and a `width` value (module docstring)."""

    type: Literal["episodic"] = "episodic"
    slots: int = Field(32, ge=1)
    width: int = Field(16, ge=1)
    key_width: int | None = Field(None, ge=1, description="default: width")
    reads: int = Field(1, ge=1)
    top_k: int = Field(1, ge=0, description="events each read blends (0: all)")
    eviction: Literal["oldest", "least_used", "least_surprising"] = "oldest"
    flags: ReadOutFlags = Field(default_factory=ReadOutFlags)

    def build(self) -> EpisodicMemory:
        return EpisodicMemory(self)


class EpisodicMemory(Recurrent):
    """Interface per step: write key, write value, then one query per read."""

    def __init__(self, spec: EpisodicSpec | None = None, **fields):
        """From a spec, or from its fields (`EpisodicMemory(slots=8, eviction="least_used")`)."""
        super().__init__()
        spec = spec or validate(EpisodicSpec, fields, "episodic memory")
        self.spec, self.reads, self.slots = spec, spec.reads, spec.slots
        self.key_width = spec.key_width or spec.width
        self.interface_size = self.key_width + spec.width + spec.reads * self.key_width
        self.readout = ReadOut(spec.reads, spec.width, self.interface_size, spec.flags)
        self.output_size = self.readout.size

    def initial_state(self, batch_size: int, device: torch.device) -> EpisodicState:
        b, n = batch_size, self.slots
        return EpisodicState(
            keys=torch.zeros(b, n, self.key_width, device=device),
            values=torch.zeros(b, n, self.spec.width, device=device),
            times=torch.full((b, n), EMPTY, dtype=torch.long, device=device),
            usage=torch.zeros(b, n, device=device),
            surprise=torch.zeros(b, n, device=device),
            read_weights=torch.zeros(b, self.reads, n, device=device),
            step=torch.zeros(b, dtype=torch.long, device=device),
        )

    def retrieve(
        self, state: EpisodicState, queries: Float[Tensor, "batch reads key_width"]
    ) -> tuple[Float[Tensor, "batch reads width"], Float[Tensor, "batch reads slots"]]:
        """(reads, weights): each query's softmax over its top_k stored events (none: zeros)."""
        scores = queries @ state["keys"].transpose(1, 2) / math.sqrt(self.key_width)
        stored = (state["times"] != EMPTY).unsqueeze(1)
        scores = scores.masked_fill(~stored, float("-inf"))
        k = self.spec.top_k
        if k and k < self.slots:
            threshold = scores.topk(k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < threshold, float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # an empty memory reads zeros
        return weights @ state["values"], weights

    def victim(self, state: EpisodicState) -> Int[Tensor, " batch"]:
        """The slot each row writes: its first empty slot, else the one `eviction` frees."""
        empty = state["times"] == EMPTY
        oldest_first = torch.argsort(state["times"], dim=1, stable=True)
        if self.spec.eviction == "oldest":
            pick = oldest_first[:, 0]
        else:
            measure = state["usage"] if self.spec.eviction == "least_used" else state["surprise"]
            ranked = torch.gather(measure.detach(), 1, oldest_first)
            pick = torch.gather(oldest_first, 1, ranked.argmin(dim=1, keepdim=True))[:, 0]
        return torch.where(empty.any(dim=1), empty.to(torch.long).argmax(dim=1), pick)

    def forward(
        self, interface: Float[Tensor, "batch interface"], state: EpisodicState
    ) -> tuple[Float[Tensor, "batch output"], EpisodicState]:
        if interface.shape[-1] != self.interface_size:
            raise ValueError(
                f"episodic memory: interface has {interface.shape[-1]} features, expected "
                f"{self.interface_size}"
            )
        kw, w = self.key_width, self.spec.width
        key, value = interface[:, :kw], interface[:, kw : kw + w]
        queries = interface[:, kw + w :].unflatten(-1, (self.reads, kw))
        predicted, _ = self.retrieve(state, key.unsqueeze(1))
        surprise = (predicted[:, 0] - value).norm(dim=-1).detach()
        slot = torch.nn.functional.one_hot(self.victim(state), self.slots).bool()  # [b, slots]
        written = EpisodicState(
            keys=torch.where(slot.unsqueeze(-1), key.unsqueeze(1), state["keys"]),
            values=torch.where(slot.unsqueeze(-1), value.unsqueeze(1), state["values"]),
            times=torch.where(slot, state["step"].unsqueeze(1), state["times"]),
            usage=state["usage"].masked_fill(slot, 0.0),
            surprise=torch.where(slot, surprise.unsqueeze(1), state["surprise"]),
            read_weights=state["read_weights"],
            step=state["step"] + 1,
        )
        reads, weights = self.retrieve(written, queries)
        written["usage"] = written["usage"] + weights.detach().sum(dim=1)
        written["read_weights"] = weights
        return self.readout(reads.flatten(1), interface), written


def _smoke() -> None:
    torch.manual_seed(0)
    memory = EpisodicMemory(slots=4, width=3, key_width=5)
    keys = torch.eye(5)[:4]
    state = memory.init_state(1)
    for t in range(4):
        write = torch.cat((keys[t], torch.full((3,), float(t)), torch.zeros(5)))[None]
        _, state = memory(write, state)
    ask = torch.cat((torch.zeros(5), torch.zeros(3), 10 * keys[2]))[None]
    read, _ = memory(ask, state)
    print(f"episodic memory ok: recalled {read[0].tolist()} for the event of step 2")


if __name__ == "__main__":
    _smoke()
