"""What the models' `generate` returns, and sampling from logits (temperature, top-k, top-p)."""

from __future__ import annotations

import dataclasses
import math

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from th1nker.tasks.vocab import EOS, PAD


@dataclasses.dataclass
class Generated:
    """answers [n_out, batch, answer]: n_out = 1 (each row's final answer) or, with `trace`, one
    per step; steps [batch]: thinking steps each row used; halt [steps, batch]: the halting
    probability after every step (NaN without a halting head)."""

    answers: Int[Tensor, "n_out batch answer"]
    steps: Int[Tensor, " batch"]
    halt: Float[Tensor, "steps batch"]


def row_exact_match(
    logits: Float[Tensor, "*steps batch answer vocab"],
    target_ids: Int[Tensor, "*target_steps batch answer"],
    target_mask: Bool[Tensor, "*target_steps batch answer"],
) -> Bool[Tensor, "*steps batch"]:
    """Whether every answer token (eos included) is the argmax, per row (and per step when the
    logits have a leading steps dimension; the targets may be one per step, or shared)."""
    return ((logits.argmax(-1) == target_ids) | ~target_mask).all(dim=-1)


def says_done(halt_logit: Float[Tensor, " batch"], threshold: float) -> Bool[Tensor, " batch"]:
    """Whether the halting probability sigmoid(logit) reaches `threshold`."""
    return halt_logit.float().sigmoid() >= threshold


class Stopping:
    """Which rows stop after each thinking step: at their `budget` of steps, or (given a
    `threshold`) at the first step whose halting probability reaches it. Keeps the steps each
    row used and every step's halting probabilities (NaN without a halting head)."""

    def __init__(self, budget: Int[Tensor, " batch"], threshold: float | None):
        self.budget, self.threshold = budget, threshold
        self.used = torch.zeros_like(budget)
        self.running = torch.ones_like(budget, dtype=torch.bool)
        self.halts: list[Tensor] = []

    def step(self, step: int, halt_logit: Tensor | None) -> Bool[Tensor, " batch"]:
        """The rows that stop after step `step` (0-based) and had not stopped before."""
        nan = torch.full(self.budget.shape, math.nan, device=self.budget.device)
        self.halts.append(nan if halt_logit is None else halt_logit.float().sigmoid())
        if self.threshold is None:
            done = torch.zeros_like(self.running)
        else:
            done = self.halts[-1] >= self.threshold
        stop = self.running & ((self.budget <= step + 1) | done)
        self.used = torch.where(stop, step + 1, self.used)
        self.running &= ~stop
        return stop

    def result(self, answers: Int[Tensor, "n_out batch answer"]) -> Generated:
        return Generated(answers=answers, steps=self.used, halt=torch.stack(self.halts))


def sample_logits(
    logits: Float[Tensor, "batch vocab"],
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Int[Tensor, " batch"]:
    """One token per row: greedy for temperature 0; else softmax(logits / temperature) restricted
    to the `top_k` most likely tokens (0: all) and to the smallest set whose probability reaches
    `top_p` (1: all)."""
    if temperature < 0 or top_k < 0 or not 0 < top_p <= 1:
        raise ValueError(
            f"temperature >= 0, top_k >= 0 and 0 < top_p <= 1 required; got {temperature}, "
            f"{top_k}, {top_p}"
        )
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
        sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def pad_after_eos(tokens: Int[Tensor, "batch answer"]) -> Int[Tensor, "batch answer"]:
    """The tokens with everything after each row's first eos replaced by pad."""
    is_eos = (tokens == EOS).long()
    return tokens.masked_fill(is_eos.cumsum(dim=1) - is_eos > 0, PAD)
