"""Random integers for the generators: exact, vectorised, any size.

Operand sizes are drawn so that short and long numbers are both common: first a decimal digit
count uniformly from a range, then a value uniformly among the numbers with that many digits
(optionally capped by a maximum). Values that may not fit an int64 are object arrays of Python
ints, drawn from 62-bit chunks so that the draw stays uniform at any size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Float, Int, Shaped

_CHUNK_BITS = 62


def uniform_ints(
    rng: np.random.Generator, low: Shaped[np.ndarray, " n"], high: Shaped[np.ndarray, " n"]
) -> Shaped[np.ndarray, " n"]:
    """One uniform integer in [low[i], high[i]] (inclusive) per row, for bounds of any size.

    int64 when every bound fits below 2**62, else an object array of Python ints (built from
    62-bit chunks with 64 spare bits, so the modulo bias is below 2**-64).
    """
    low, high = np.asarray(low), np.asarray(high)
    if len(low) == 0:
        return np.zeros(0, dtype=np.int64)
    big = max(abs(int(low.min())), abs(int(high.max()))) >= 2**_CHUNK_BITS
    if not big:
        return rng.integers(low.astype(np.int64), high.astype(np.int64), endpoint=True)
    span = high.astype(object) - low.astype(object) + 1
    n_chunks = (int(span.max()).bit_length() + 64) // _CHUNK_BITS + 1
    draw = np.zeros(len(low), dtype=object)
    for _ in range(n_chunks):
        chunk = rng.integers(0, 2**_CHUNK_BITS, size=len(low)).astype(object)
        draw = (draw << _CHUNK_BITS) | chunk
    return low.astype(object) + draw % span


def digit_bounds(
    digits: Int[np.ndarray, " n"], nonzero: bool = False
) -> tuple[Shaped[np.ndarray, " n"], Shaped[np.ndarray, " n"]]:
    """Smallest and largest numbers with `digits` decimal digits (1 digit: 0..9, or 1..9)."""
    powers = np.array([10**d for d in range(int(digits.max(initial=0)) + 1)], dtype=object)
    low = np.where(digits == 1, int(nonzero), powers[digits - 1])
    high = powers[digits] - 1
    return low, high


def sample_numbers(
    rng: np.random.Generator,
    digit_range: tuple[int, int],
    n: int,
    max_number: int | None = None,
    nonzero: bool = False,
) -> tuple[Shaped[np.ndarray, " n"], Int[np.ndarray, " n"]]:
    """`n` integers with a uniform decimal digit count in `digit_range`, uniform within it.

    With `max_number` the largest values are capped (digit counts above it are not drawn).
    Returns (values, digit counts).
    """
    low_digits, high_digits = digit_range
    if max_number is not None:
        high_digits = min(high_digits, len(str(max_number)))
    digits = rng.integers(low_digits, high_digits, size=n, endpoint=True)
    low, high = digit_bounds(digits, nonzero)
    if max_number is not None:
        high = np.minimum(high, max_number)
    return uniform_ints(rng, low, high), digits


def geometric_weights(
    n: int, distribution: Sequence[int | float] | None
) -> Float[np.ndarray, " n"]:
    """Probabilities of `n` choices from a scheme's `distribution` field.

    None: uniform. Two numbers [first, last]: weights grow geometrically from the first choice to
    the last (so [1, 10] makes the first choice 10x less likely than the last). n numbers: the
    weights of each choice.
    """
    if distribution is None:
        weights = np.ones(n)
    elif len(distribution) == n:
        weights = np.asarray(distribution, dtype=np.float64)
    else:
        first, last = distribution
        weights = first * (last / first) ** (np.arange(n) / max(n - 1, 1))
    return weights / weights.sum()


def decimal_digits(values: Shaped[np.ndarray, "*shape"]) -> Int[np.ndarray, "*shape"]:
    """Number of decimal digits of |value| (0 has one digit), for ints of any size."""
    magnitude = np.abs(values)
    largest = int(magnitude.max(initial=0))
    powers = np.array([10**d for d in range(1, len(str(largest)) + 1)], dtype=object)
    return 1 + np.searchsorted(powers, magnitude.astype(object), side="right")
