"""Base conversion: a number in base a, the trigger `output:base @ b`, the target in base b."""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Shaped

from th1nker.tasks.batch_encoding import concat_segments, constant_segment, encode_ints
from th1nker.tasks.generators.base import (
    Encoded,
    Formatter,
    Problems,
    base_segment,
    number_target,
    output_base_suffix,
)
from th1nker.tasks.sampling import decimal_digits, sample_numbers
from th1nker.tasks.vocab import EQUALS


@dataclasses.dataclass(frozen=True)
class BaseConvertProblems(Problems):
    """value [n] (Python ints or int64; negative when the generator allows it)."""

    task = "base_convert"
    value: Shaped[np.ndarray, " n"]

    def difficulty(self):
        return decimal_digits(self.value), np.ones(len(self), dtype=np.int64)

    def choose_out_base(self, rng, base, out_base, allowed_bases):
        """A target base drawn uniformly from `allowed_bases`, other than the input base."""
        allowed = np.asarray(allowed_bases)
        choice = allowed[rng.integers(0, len(allowed), size=len(base))]
        if len(allowed) > 1:
            same = np.flatnonzero(choice == base)
            shift = rng.integers(1, len(allowed), size=len(same))
            index = (np.searchsorted(allowed, base[same]) + shift) % len(allowed)
            choice[same] = allowed[index]
        return choice

    def encode(self, base, out_base) -> Encoded:
        inputs = concat_segments(
            [
                base_segment(base),
                encode_ints(self.value, base),
                *output_base_suffix(base, out_base),
                constant_segment([EQUALS], np.ones(len(self), dtype=bool)),
            ]
        )
        return Encoded(*inputs, *number_target(self.value, out_base))

    def describe(self, fmt: Formatter, base, out_base):
        return [
            (fmt(int(v), int(b)), fmt(int(v), int(ob)))
            for v, b, ob in zip(self.value, base, out_base, strict=True)
        ]


def sample_base_convert(
    rng: np.random.Generator,
    n: int,
    digits: tuple[int, int],
    max_number: int | None,
    negative: bool,
) -> BaseConvertProblems:
    """`n` numbers with a uniform decimal digit count in `digits`, negated at random if allowed."""
    value, _ = sample_numbers(rng, digits, n, max_number)
    if negative:
        value = np.where(rng.random(n) < 0.5, -value, value)
    return BaseConvertProblems(value)
