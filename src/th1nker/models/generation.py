"""What the models' `generate` returns, and sampling from logits (temperature, top-k, top-p)."""

from __future__ import annotations

import dataclasses

import torch
from jaxtyping import Float, Int
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
