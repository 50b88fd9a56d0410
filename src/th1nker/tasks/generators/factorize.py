"""Integer factorization: the input is a product of primes, the target its canonical factorization.

The input multiplies `factors` primes drawn with repetition (digit count uniform, then uniform among
the primes of that length up to `max_number`); the target lists the distinct primes ascending,
`^e` after a prime that repeats, `*` between factors: 2*2*2*5*7 -> 2^3*5*7. Exponents are written
in the output base like every other number.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Bool, Int, Shaped

from th1nker.tasks.batch_encoding import concat_segments, constant_segment, encode_ints
from th1nker.tasks.generators.base import (
    Encoded,
    Formatter,
    Problems,
    base_segment,
    output_base_suffix,
)
from th1nker.tasks.primes import sample_primes
from th1nker.tasks.sampling import decimal_digits
from th1nker.tasks.vocab import EOS, EQUALS, MUL, POW, TASK_FACTORISE


@dataclasses.dataclass(frozen=True)
class FactorizeProblems(Problems):
    """primes [n, S] ascending (0 in unused slots), n_primes [n], product [n]."""

    task = "factorize"
    primes: Shaped[np.ndarray, "n slots"]
    n_primes: Int[np.ndarray, " n"]
    product: Shaped[np.ndarray, " n"]

    def difficulty(self):
        return decimal_digits(self.product), self.n_primes

    def _runs(self) -> tuple[Bool[np.ndarray, "n slots"], Int[np.ndarray, "n slots"]]:
        """(run_start, run_length): slot k starts a run of `run_length[k]` equal primes."""
        n, slots = self.primes.shape
        active = np.arange(slots) < self.n_primes[:, None]
        same_as_previous = np.zeros((n, slots), dtype=bool)
        same_as_previous[:, 1:] = np.asarray(self.primes[:, 1:] == self.primes[:, :-1], dtype=bool)
        same_as_previous &= active
        run_length = np.zeros((n, slots), dtype=np.int64)
        following = np.zeros(n, dtype=np.int64)
        for k in reversed(range(slots)):
            run_length[:, k] = np.where(active[:, k], 1 + following, 0)
            following = np.where(same_as_previous[:, k], run_length[:, k], 0)
        return active & ~same_as_previous, run_length

    def factorization_segment(self, out_base):
        """Tokens of the canonical factorization in `out_base` (without `eos`)."""
        run_start, run_length = self._runs()
        segments = []
        for k in range(self.primes.shape[1]):
            start = run_start[:, k]
            segments.append(constant_segment([MUL], start & run_start[:, :k].any(axis=1)))
            tokens, lengths = encode_ints(self.primes[:, k], out_base)
            segments.append((tokens, np.where(start, lengths, 0)))
            repeated = start & (run_length[:, k] > 1)
            segments.append(constant_segment([POW], repeated))
            tokens, lengths = encode_ints(run_length[:, k], out_base)
            segments.append((tokens, np.where(repeated, lengths, 0)))
        return concat_segments(segments)

    def encode(self, base, out_base) -> Encoded:
        n = len(self)
        everywhere = np.ones(n, dtype=bool)
        inputs = concat_segments(
            [
                constant_segment([TASK_FACTORISE], everywhere),
                base_segment(base),
                encode_ints(self.product, base),
                *output_base_suffix(base, out_base),
                constant_segment([EQUALS], everywhere),
            ]
        )
        target = concat_segments(
            [self.factorization_segment(out_base), constant_segment([EOS], everywhere)]
        )
        return Encoded(*inputs, *target)

    def describe(self, fmt: Formatter, base, out_base):
        run_start, run_length = self._runs()
        texts = []
        for i in range(len(self)):
            factors = []
            for k in np.flatnonzero(run_start[i]):
                factor = fmt(int(self.primes[i, k]), int(out_base[i]))
                if run_length[i, k] > 1:
                    factor += "^" + fmt(int(run_length[i, k]), int(out_base[i]))
                factors.append(factor)
            texts.append((fmt(int(self.product[i]), int(base[i])), "*".join(factors)))
        return texts


def sample_factorize(
    rng: np.random.Generator,
    n: int,
    factors: tuple[int, int],
    digits: tuple[int, int],
    max_number: int,
) -> FactorizeProblems:
    """`n` products of a uniform number of primes in `factors` (see the module docstring)."""
    slots = factors[1]
    n_primes = rng.integers(factors[0], factors[1], size=n, endpoint=True)
    high_digits = min(digits[1], len(str(max_number)))
    prime_digits = rng.integers(digits[0], high_digits, size=(n, slots), endpoint=True)
    primes = sample_primes(rng, prime_digits.ravel(), max_number).reshape(n, slots)
    inactive = np.arange(slots) >= n_primes[:, None]
    primes = primes.astype(object)
    primes[inactive] = max_number + 1  # sorts after every prime, then cleared
    primes = np.sort(primes, axis=1)
    primes[np.arange(slots) >= n_primes[:, None]] = 0
    product = np.where(inactive, 1, primes).prod(axis=1)
    return FactorizeProblems(primes, n_primes, product)
