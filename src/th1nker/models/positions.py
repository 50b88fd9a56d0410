"""Where each token sits inside its number: the positional scheme that lets digits align.

A digit's *significance* is its index inside its number: 0 for the units digit (integers are
written least significant digit first), 1 for the next, ...; fraction digits after `.` get
-1, -2, ... (they are written most significant first). Every other token (operators, markers, the
base value after `@`) has significance 0. Attention compares significances through rotary
embeddings (models/attention.py), which depend only on differences, so a latent at position j
finds the digits of weight base^j in numbers of any length, including lengths never trained on.

A token's *ordinal* is how many numbers started before or at it (0 before the first number), which
tells the two operands of `a-b` apart.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from th1nker.tasks.vocab import BASE, N_DIGITS, POINT


def number_digits(ids: Int[Tensor, "batch seq"]) -> Bool[Tensor, "batch seq"]:
    """Digit tokens that belong to a number (not the base value written after `@`)."""
    after_base = torch.zeros_like(ids, dtype=torch.bool)
    after_base[:, 1:] = ids[:, :-1] == BASE
    return (ids < N_DIGITS) & ~after_base


def _last_index_where(flags: Bool[Tensor, "batch seq"]) -> Int[Tensor, "batch seq"]:
    """For every position, the index of the last position <= it where `flags` holds (-1: none)."""
    index = torch.arange(flags.shape[1], device=flags.device).expand_as(flags)
    marked = torch.where(flags, index, torch.full_like(index, -1))
    return marked.cummax(dim=1).values


def significance(ids: Int[Tensor, "batch seq"]) -> Int[Tensor, "batch seq"]:
    """Significance of every token: index inside its number (fractions negative), else 0."""
    is_digit = number_digits(ids)
    last_other = _last_index_where(~is_digit)
    index = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    run_index = index - last_other - 1  # digits since the last non-digit token
    opener = ids.gather(1, last_other.clamp(min=0))
    in_fraction = (last_other >= 0) & (opener == POINT)
    position = torch.where(in_fraction, -run_index - 1, run_index)
    return torch.where(is_digit, position, torch.zeros_like(position))


def ordinal(ids: Int[Tensor, "batch seq"]) -> Int[Tensor, "batch seq"]:
    """1 + the number of numbers started before each token (0 before the first number).

    A fraction's digits belong to the number of its integer part.
    """
    is_digit = number_digits(ids)
    previous = torch.zeros_like(is_digit)
    previous[:, 1:] = is_digit[:, :-1]
    before_previous = torch.zeros_like(ids)
    before_previous[:, 1:] = ids[:, :-1]
    continues_fraction = before_previous == POINT
    starts = is_digit & ~previous & ~continues_fraction
    return starts.long().cumsum(dim=1)


def next_digit_significance(ids: Int[Tensor, "batch seq"]) -> Int[Tensor, "batch seq"]:
    """The significance the token *after* each position would have if it were a digit.

    Used for the decoder's queries: the query that reads token t predicts token t+1, whose
    significance is known from the prefix alone (one more than a digit's, or 0 after a marker).
    """
    is_digit = number_digits(ids)
    position = significance(ids)
    step = torch.where(position < 0, position - 1, position + 1)
    return torch.where(is_digit, step, torch.zeros_like(position))
