"""Primes for the factorization task: a sieve, an exact primality test and uniform random primes.

Primality is Miller-Rabin with fixed witnesses, which is exact (not probabilistic) below
MAX_PRIME_BOUND: witnesses 2, 3, 5, 7 suffice below 3,215,031,751 and the first 13 primes below
3.3e24 (Jaeschke 1993; Sorenson and Webster 2015). Below 2**31 the test runs vectorised in int64.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from jaxtyping import Bool, Int, Shaped

from th1nker.tasks.sampling import digit_bounds, uniform_ints

SIEVE_LIMIT = 10**7
MAX_PRIME_BOUND = 3_317_044_064_679_887_385_961_981
_SMALL_WITNESSES = (2, 3, 5, 7)
_LARGE_WITNESSES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
_PRIMORIAL_23 = 2 * 3 * 5 * 7 * 11 * 13 * 17 * 19 * 23
_INT64_TEST_LIMIT = 2**31  # (n-1)**2 must fit an int64 for the vectorised modular products


@cache
def sieve() -> Bool[np.ndarray, " limit"]:
    """is_prime[k] for 0 <= k < SIEVE_LIMIT (sieve of Eratosthenes)."""
    flags = np.ones(SIEVE_LIMIT, dtype=bool)
    flags[:2] = False
    for p in range(2, int(SIEVE_LIMIT**0.5) + 1):
        if flags[p]:
            flags[p * p :: p] = False
    return flags


@cache
def small_primes() -> Int[np.ndarray, " count"]:
    """All primes below SIEVE_LIMIT, ascending."""
    return np.flatnonzero(sieve()).astype(np.int64)


def is_prime(n: int) -> bool:
    """Exact primality of one integer 0 <= n < MAX_PRIME_BOUND."""
    if n < SIEVE_LIMIT:
        return bool(sieve()[n]) if n >= 0 else False
    if n >= MAX_PRIME_BOUND:
        raise ValueError(f"primality is exact only below {MAX_PRIME_BOUND}, got {n}")
    if n % 2 == 0:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    witnesses = _SMALL_WITNESSES if n < _INT64_TEST_LIMIT else _LARGE_WITNESSES
    for a in witnesses:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _modpow(base: Int[np.ndarray, " n"], exponent: Int[np.ndarray, " n"], modulus):
    """base**exponent % modulus elementwise in int64 (modulus < 2**31)."""
    result = np.ones_like(base)
    base = base % modulus
    exponent = exponent.copy()
    while exponent.any():
        odd = (exponent & 1).astype(bool)
        result = np.where(odd, result * base % modulus, result)
        base = base * base % modulus
        exponent >>= 1
    return result


def _is_prime_int64(n: Int[np.ndarray, " n"]) -> Bool[np.ndarray, " n"]:
    """Vectorised Miller-Rabin with witnesses 2, 3, 5, 7 for SIEVE_LIMIT <= n < 2**31.

    Numbers with a prime factor up to 23 are sorted out by one gcd first, and each witness only
    tests the numbers that passed the previous ones, so most composites cost one modpow or none.
    """
    prime = np.gcd(n, _PRIMORIAL_23) == 1
    for a in _SMALL_WITNESSES:
        rows = np.flatnonzero(prime)
        m = n[rows]
        d, s = m - 1, np.zeros_like(m)
        while (even := d % 2 == 0).any():
            d = np.where(even, d // 2, d)
            s += even
        x = _modpow(np.full_like(m, a), d, m)
        passed = (x == 1) | (x == m - 1)
        for r in range(1, int(s.max(initial=0))):
            x = np.where(passed, x, x * x % m)
            passed |= (r < s) & (x == m - 1)
        prime[rows] = passed
    return prime


def is_prime_array(n: Shaped[np.ndarray, " n"]) -> Bool[np.ndarray, " n"]:
    """Exact primality of every entry (int64 or Python ints below MAX_PRIME_BOUND)."""
    n = np.asarray(n)
    result = np.zeros(len(n), dtype=bool)
    small = np.asarray(n < SIEVE_LIMIT, dtype=bool)
    result[small] = sieve()[n[small].astype(np.int64)] & np.asarray(n[small] >= 0, dtype=bool)
    mid = ~small & np.asarray(n < _INT64_TEST_LIMIT, dtype=bool)
    candidates = n[mid].astype(np.int64)
    result[mid] = _is_prime_int64(candidates)
    large = np.flatnonzero(~small & ~mid)
    result[large] = [is_prime(int(value)) for value in n[large]]
    return result


def sample_primes(
    rng: np.random.Generator, digits: Int[np.ndarray, " n"], max_number: int
) -> Shaped[np.ndarray, " n"]:
    """One prime per row, uniform among the primes with `digits[i]` decimal digits <= max_number.

    Small ranges index the sieve; larger ones draw uniform candidates and keep the first prime
    (rejection sampling, which keeps the draw uniform over the primes of the range).
    """
    low, high = digit_bounds(digits)
    high = np.minimum(high, max_number)
    primes = np.zeros(len(digits), dtype=np.int64 if max_number < 2**62 else object)
    from_sieve = np.asarray(high < SIEVE_LIMIT, dtype=bool)
    table = small_primes()
    first = np.searchsorted(table, low[from_sieve].astype(np.int64), side="left")
    last = np.searchsorted(table, high[from_sieve].astype(np.int64), side="right")
    primes[from_sieve] = table[rng.integers(first, last)]
    pending = np.flatnonzero(~from_sieve)
    tries_per_round = 16
    while len(pending):
        rows = np.repeat(pending, tries_per_round)
        candidates = uniform_ints(rng, low[rows], high[rows])
        found = is_prime_array(candidates).reshape(len(pending), tries_per_round)
        hit = found.any(axis=1)
        chosen = candidates.reshape(len(pending), tries_per_round)[hit, np.argmax(found[hit], 1)]
        primes[pending[hit]] = chosen
        pending = pending[~hit]
    return primes
