"""A toy model family, registered in this one file (the contract test imports it through an
experiment's `imports:`): it looks answers up. Training stores every problem it is shown, so it
has no trainable parameters and its loss has no graph; its table is buffers, so the default
checkpoint holds it. The carry counts the problems stored (checked across a resume)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from th1nker.models.family import Batch, Carry, Family, FamilyConfig, LossStats, register_family
from th1nker.models.generation import Generated, pad_after_eos
from th1nker.tasks.vocab import EOS, PAD


class LookupConfig(FamilyConfig):
    kind: Literal["lookup"] = "lookup"
    capacity: int = Field(4096, ge=1, description="problems it can store")
    width: int = Field(16, ge=1, description="tokens kept of a problem and of an answer")


@register_family
class Lookup(Family):
    config_class = LookupConfig

    def __init__(self, config: LookupConfig):
        super().__init__(config)
        c = config
        self.register_buffer("keys", torch.full((c.capacity, c.width), PAD, dtype=torch.long))
        self.register_buffer("answers", torch.full((c.capacity, c.width), PAD, dtype=torch.long))
        self.register_buffer("stored", torch.zeros((), dtype=torch.long))

    def _key(self, input_ids: Tensor, input_mask: Tensor) -> Tensor:
        ids = input_ids.masked_fill(~input_mask, PAD)[:, : self.config.width]
        return torch.nn.functional.pad(ids, (0, self.config.width - ids.shape[1]), value=PAD)

    def _find(self, keys: Tensor) -> Tensor:
        """Index of each key in the table, -1 when unknown."""
        n = int(self.stored)
        if n == 0:
            return torch.full((len(keys),), -1, device=keys.device)
        match = (keys[:, None] == self.keys[None, :n]).all(-1)
        return torch.where(match.any(-1), match.int().argmax(-1), -1)

    def loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, LossStats, Carry]:
        keys = self._key(batch["input_ids"], batch["input_mask"])
        known = self._find(keys) >= 0
        new = keys[~known][: self.config.capacity - int(self.stored)]
        answers = self._key(batch["target_ids"], batch["target_mask"])[~known][: len(new)]
        start = int(self.stored)
        self.keys[start : start + len(new)] = new
        self.answers[start : start + len(new)] = answers
        self.stored += len(new)
        count = (carry or {"stored": torch.zeros((), dtype=torch.long)})["stored"] + len(new)
        stats = LossStats(
            per_step=[float((~known).float().mean())],
            correct=int(known.sum()),
            rows=len(keys),
            tokens=int(batch["target_mask"].sum()),
            thinking_steps=len(keys),
        )
        return (~known).float().mean(), stats, {"stored": count}

    @torch.no_grad()
    def generate(self, input_ids, input_mask, steps, max_answer, trace=False, use_halting=True):
        found = self._find(self._key(input_ids, input_mask))
        answers = self.answers[found.clamp(min=0)]
        answers[found < 0] = PAD
        answers[found < 0, 0] = EOS  # unknown: an empty (wrong) answer
        width = min(max_answer, self.config.width)
        out = torch.full((len(found), max_answer), PAD, dtype=torch.long, device=found.device)
        out[:, :width] = answers[:, :width]
        halt = torch.full((1, len(found)), float("nan"), device=found.device)
        return Generated(pad_after_eos(out)[None], torch.ones_like(steps), halt)
