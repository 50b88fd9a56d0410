"""Integer factorization: the input is a product of primes, the target its canonical factorization.

The target lists the distinct primes ascending, `^e` after a prime that repeats, `*` between
factors: 2*2*2*5*7 -> 2^3*5*7. Exponents are written in the output base like every other number.
Two ways to draw the input (`FactorizeSpec.sampling`):

- `prime_digits`: `factors` primes drawn with repetition, each with a uniform digit count, then
  uniform among the primes of that length up to `max_number`;
- `log_uniform`: a smallest prime factor p log-uniform up to sqrt(max_number) (the largest a
  composite can have), then the number of prime factors k (with multiplicity) uniform among those
  of `factors` with p**k <= max_number; k = 1 draws instead a prime log-uniform up to
  max_number; each further factor is log-uniform between p and what the bound leaves. Small and
  large smallest factors and few and many factors are then all common, instead of mostly even
  numbers as uniform numbers are (Charton 2023 samples GCD operands log-uniformly for the same
  reason). docs/task-language.md#factorization shows the histograms.

Two traces (`FactorizeSpec.trace`):

- `division`: each state divides the cofactor by its smallest prime factor, the factors found so
  far written first (canonical), then `*` and the cofactor, until the cofactor is prime:
  360 -> 2*180 -> 2^2*90 -> 2^3*45 -> 2^3*3*15 -> 2^3*3^2*5. A number with k prime factors has
  max(1, k - 1) states; primes and products of two primes have only the answer.
- `trial`: trial division, one state per test. For the cofactor m (first n) and the primes p in
  order while p*p <= m: `p*q` when p divides m (q = m / p becomes the cofactor and p is tried
  again), else `p%r` with the remainder r = m mod p (p is done). Then the answer: 360 ->
  2*180 -> 2*90 -> 2*45 -> 2%1 -> 3*15 -> 3*5 -> 2^3*3^2*5 (9 > 5: 5 is prime), 77 -> 2%1 ->
  3%2 -> 5%2 -> 7*11 -> 7*11. Every decision the search makes is written down, so each state is
  one remainder of a number by a small prime; a prime n costs one state per prime up to sqrt(n)
  (54 below 2^16).
"""

from __future__ import annotations

import dataclasses
import functools

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
from th1nker.tasks.primes import SIEVE_LIMIT, is_prime_array, sample_primes, small_primes
from th1nker.tasks.sampling import decimal_digits
from th1nker.tasks.vocab import EOS, EQUALS, MOD, MUL, POW, TASK_FACTORISE

TRIAL_MAX_NUMBER = 2**24  # the `trial` trace has one state per prime up to sqrt(n): 564 here


@dataclasses.dataclass(frozen=True)
class FactorizeProblems(Problems):
    """primes [n, S] ascending (0 in unused slots), n_primes [n], product [n], trial [n]."""

    task = "factorize"
    primes: Shaped[np.ndarray, "n slots"]
    n_primes: Int[np.ndarray, " n"]
    product: Shaped[np.ndarray, " n"]
    trial: Bool[np.ndarray, " n"]  # True: the `trial` trace, False: `division` (module docstring)

    def difficulty(self):
        return decimal_digits(self.product), self.n_primes

    def groups(self):
        """`smallest_factor`: the octave 2^j..2^(j+1)-1 of the smallest prime factor (`2-3`,
        `4-7`, ...); `bits`: the bit length of the number (n < 2^bits)."""
        octave = [int(p).bit_length() - 1 for p in self.primes[:, 0]]
        return {
            "smallest_factor": [f"{2**j}-{2 ** (j + 1) - 1}" for j in octave],
            "bits": [str(int(n).bit_length()) for n in self.product],
        }

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
        answers = self._factorization_texts(fmt, out_base)
        return [(fmt(int(self.product[i]), int(base[i])), answers[i]) for i in range(len(self))]

    def _factorization_texts(self, fmt: Formatter, out_base) -> list[str]:
        """The canonical factorization of every row as text (`2^3*5*7`)."""
        run_start, run_length = self._runs()
        texts = []
        for i in range(len(self)):
            factors = []
            for k in np.flatnonzero(run_start[i]):
                factor = fmt(int(self.primes[i, k]), int(out_base[i]))
                if run_length[i, k] > 1:
                    factor += "^" + fmt(int(run_length[i, k]), int(out_base[i]))
                factors.append(factor)
            texts.append("*".join(factors))
        return texts

    def found_so_far(self, k: int) -> tuple[FactorizeProblems, Shaped[np.ndarray, " n"]]:
        """(the k smallest prime factors of every row as problems of their own, the cofactor
        left: the product of the other factors): what the trace holds after k divisions."""
        kept = np.arange(self.primes.shape[1]) < k
        found = np.where(kept, self.primes, 0)
        cofactor = np.where(kept | (self.primes == 0), 1, self.primes).prod(axis=1)
        found_product = np.where(kept & (self.primes != 0), self.primes, 1).prod(axis=1)
        found = FactorizeProblems(found, np.minimum(self.n_primes, k), found_product, self.trial)
        return found, cofactor

    def trace(self, base, out_base):
        """Per row, the states of its trace (`trial` or `division`) as token lists ending in
        `eos`, the answer last."""
        out_base = np.asarray(out_base)
        traces: list[list[list[int]]] = [[] for _ in range(len(self))]
        for trial in (True, False):
            rows = np.flatnonzero(self.trial == trial)
            if len(rows):
                part = self.take(rows)
                kind = part._trial_trace if trial else part._division_trace
                for row, states in zip(rows, kind(out_base[rows]), strict=True):
                    traces[row] = states
        return traces

    def _trial_trace(self, out_base) -> list[list[list[int]]]:
        steps = [trial_steps(int(n)) for n in self.product]
        tests = [
            (p, divides, x, b)
            for row, b in zip(steps, out_base, strict=True)
            for p, divides, x in row
        ]
        prime, divides, number, bases = np.array(tests, dtype=np.int64).reshape(-1, 4).T
        tokens, lengths = concat_segments(
            [
                encode_ints(prime, bases),
                constant_segment([MUL], divides == 1),
                constant_segment([MOD], divides == 0),
                encode_ints(number, bases),
                constant_segment([EOS], np.ones(len(tests), dtype=bool)),
            ]
        )
        written = iter(tokens[k, : lengths[k]].tolist() for k in range(len(tests)))
        answers = self.encode(out_base, out_base)
        return [
            [next(written) for _ in row] + [answers.target_ids[i, : answers.target_len[i]].tolist()]
            for i, row in enumerate(steps)
        ]

    def _division_trace(self, out_base) -> list[list[list[int]]]:
        n, everywhere = len(self), np.ones(len(self), dtype=bool)
        answers = self.encode(out_base, out_base)
        traces = [[] for _ in range(n)]
        for k in range(1, self.primes.shape[1] - 1):
            inner = np.flatnonzero(k < self.n_primes - 1)  # the cofactor is not prime yet
            if not len(inner):
                break
            found, cofactor = self.take(inner).found_so_far(k)
            tokens, lengths = concat_segments(
                [
                    found.factorization_segment(out_base[inner]),
                    constant_segment([MUL], everywhere[inner]),
                    encode_ints(cofactor, out_base[inner]),
                    constant_segment([EOS], everywhere[inner]),
                ]
            )
            for row, state, length in zip(inner, tokens, lengths, strict=True):
                traces[row].append(state[:length].tolist())
        for row in range(n):
            traces[row].append(answers.target_ids[row, : answers.target_len[row]].tolist())
        return traces

    def describe_trace(self, fmt, base, out_base):
        answers = self._factorization_texts(fmt, out_base)
        texts = [
            [
                f"{fmt(p, int(b))}{'*' if divides else '%'}{fmt(x, int(b))}"
                for p, divides, x in trial_steps(int(n))
            ]
            if trial
            else []
            for n, b, trial in zip(self.product, out_base, self.trial, strict=True)
        ]
        for k in range(1, self.primes.shape[1] - 1):
            inner = np.flatnonzero((k < self.n_primes - 1) & ~self.trial)
            found, cofactor = self.take(inner).found_so_far(k)
            found_texts = found._factorization_texts(fmt, out_base[inner])
            for row, text, rest in zip(inner, found_texts, cofactor, strict=True):
                texts[row].append(f"{text}*{fmt(int(rest), int(out_base[row]))}")
        return [states + [answer] for states, answer in zip(texts, answers, strict=True)]


def trial_steps(n: int) -> list[tuple[int, bool, int]]:
    """The tests of the `trial` trace of n (module docstring): per prime p tried while
    p*p <= m, (p, True, m // p) when p divides the cofactor m, else (p, False, m % p)."""
    if n > TRIAL_MAX_NUMBER:
        raise ValueError(f"the trial trace needs n <= {TRIAL_MAX_NUMBER}, got {n}")
    steps, m = [], n
    for p in _trial_primes().tolist():
        while p * p <= m and m % p == 0:
            m //= p
            steps.append((p, True, m))
        if p * p > m:
            return steps
        steps.append((p, False, m % p))
    raise AssertionError("unreachable: the primes reach sqrt(TRIAL_MAX_NUMBER)")


@functools.cache
def _trial_primes() -> Int[np.ndarray, " count"]:
    """The primes up to sqrt(TRIAL_MAX_NUMBER), the candidates of the `trial` trace."""
    primes = small_primes()
    return primes[primes * primes <= TRIAL_MAX_NUMBER]


def sample_factorize(
    rng: np.random.Generator,
    n: int,
    factors: tuple[int, int],
    digits: tuple[int, int],
    max_number: int,
    trial: bool = False,
) -> FactorizeProblems:
    """`n` products of a uniform number of primes in `factors` (see the module docstring),
    traced by trial division when `trial`."""
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
    return FactorizeProblems(primes, n_primes, product, np.full(n, trial))


def sample_factorize_log_uniform(
    rng: np.random.Generator, n: int, factors: tuple[int, int], max_number: int, trial: bool = False
) -> FactorizeProblems:
    """`n` numbers <= max_number drawn by the `log_uniform` rule of the module docstring, traced
    by trial division when `trial`."""
    most = min(factors[1], max_number.bit_length() - 1)  # 2**k <= max_number
    fewest = min(factors[0], most)
    # the smallest factor p of a composite: log-uniform up to the largest p with p**2 (or
    # p**fewest) <= max_number; then k uniform among the counts that fit (p**k <= max_number)
    root = _integer_root(max_number, np.full(n, max(2, fewest)))
    smallest = _prime_at_most(_log_uniform(rng, 2, root))
    fit = np.floor(np.log(max_number + 0.5) / np.log(smallest)).astype(np.int64)
    n_primes = rng.integers(fewest, np.maximum(np.minimum(fit, most), fewest), endpoint=True)
    prime = n_primes == 1
    smallest[prime] = _prime_at_most(_log_uniform(rng, 2, np.full(int(prime.sum()), max_number)))
    slots = most  # the same width in every draw, so that batches concatenate
    primes = np.zeros((n, slots), dtype=np.int64)
    primes[:, 0] = smallest
    budget = np.full(n, max_number, dtype=np.int64) // smallest
    for k in range(1, slots):
        rows = np.flatnonzero(k < n_primes)
        left = n_primes[rows] - k  # factors still to draw, this one included
        low = smallest[rows]
        # q * low**(left - 1) <= budget: this factor and the rest (all >= low) still fit
        chosen = _prime_at_most(_log_uniform(rng, low, budget[rows] // low ** (left - 1)))
        primes[rows, k] = chosen
        budget[rows] //= chosen
    primes = np.sort(np.where(primes == 0, max_number + 1, primes), axis=1)
    primes = np.where(primes > max_number, 0, primes)
    product = np.where(primes == 0, 1, primes).astype(object).prod(axis=1)
    return FactorizeProblems(primes, n_primes, product, np.full(n, trial))


def _integer_root(value: int, k: Int[np.ndarray, " n"]) -> Int[np.ndarray, " n"]:
    """The largest r with r**k[i] <= value, per row (float estimate, then corrected exactly)."""
    root = np.floor(float(value) ** (1.0 / k)).astype(np.int64)
    for _ in range(2):
        root = np.where(root.astype(object) ** k > value, root - 1, root)
        root = np.where((root + 1).astype(object) ** k <= value, root + 1, root)
    return root


def _log_uniform(rng, low, high: Int[np.ndarray, " n"]) -> Int[np.ndarray, " n"]:
    """One integer per row with log(x) uniform in [log low, log(high + 1)), within [low, high]."""
    low = np.broadcast_to(np.asarray(low, dtype=np.int64), high.shape)
    x = np.exp(rng.uniform(np.log(low), np.log(high + 1.0)))
    return np.clip(np.floor(x).astype(np.int64), low, high)


def _prime_at_most(x: Shaped[np.ndarray, " n"]) -> Shaped[np.ndarray, " n"]:
    """The largest prime <= x[i] (every x[i] >= 2): the sieve below SIEVE_LIMIT, a downward
    scan with the exact test above it (prime gaps there are a few hundred at most)."""
    x = np.asarray(x, dtype=np.int64)
    out = np.zeros(len(x), dtype=np.int64)
    small = x < SIEVE_LIMIT
    table = small_primes()
    out[small] = table[np.searchsorted(table, x[small], side="right") - 1]
    pending = np.flatnonzero(~small)
    candidate = x[pending]
    while len(pending):
        prime = is_prime_array(candidate)
        out[pending[prime]] = candidate[prime]
        pending, candidate = pending[~prime], candidate[~prime] - 1
    return out
