import numpy as np
import pytest
import sympy
from helpers import records, scheme
from reference import canonical, read_number, split_numbers, trial_division

from th1nker.tasks.primes import is_prime, is_prime_array, sample_primes, sieve
from th1nker.tasks.vocab import EOS, TOKEN_IDS


def _read_factorization(target_ids, base):
    """[(prime, exponent)] from `p [^ e] * ...` tokens, by the reference parser."""
    assert target_ids[-1] == EOS
    factors, parts = [], split_numbers(target_ids[:-1])
    while parts:
        prime = read_number(parts.pop(0), base)
        exponent = 1
        if parts and parts[0] == "^":
            parts.pop(0)
            exponent = read_number(parts.pop(0), base)
        factors.append((prime, exponent))
        if parts:
            assert parts.pop(0) == "*"
    return factors


def _check(record):
    ids = record["input_ids"]
    assert ids[:2] == [TOKEN_IDS["task:factorise"], TOKEN_IDS["@"]] and ids[-1] == TOKEN_IDS["="]
    number = read_number(ids[3:-1], record["base"])
    assert str(number) == record["problem"]
    factors = _read_factorization(record["target_ids"], record["out_base"])
    assert [p for p, _ in factors] == sorted({p for p, _ in factors})  # ascending, distinct
    assert all(e >= 1 for _, e in factors)
    return number, factors


def test_10000_small_factorizations_match_trial_division():
    generator = {"type": "factorize", "factors": [1, 9], "max_number": 1000}
    bases = {"values": [2, 10, 16, 256]}
    for record in records(scheme(generators=[generator], bases=bases, max_length=1024), 10_000):
        number, factors = _check(record)
        expected = trial_division(number)
        assert record["answer"] == canonical(expected)
        assert factors == [(p, expected.count(p)) for p in sorted(set(expected))]
        assert record["operands"] == len(expected)


@pytest.mark.parametrize("max_number", [10**9, 10**15])
def test_large_factorizations_are_checked_by_sympy(max_number):
    generator = {"type": "factorize", "factors": [1, 9], "max_number": max_number}
    task_scheme = scheme(generators=[generator], bases={"values": [10, 16]}, max_length=1024)
    for record in records(task_scheme, 2000 if max_number == 10**9 else 300):
        number, factors = _check(record)
        # Primes (sympy's test) whose product is the number: by unique factorization, the answer.
        assert all(sympy.isprime(p) for p, _ in factors)
        assert np.prod([p**e for p, e in factors], dtype=object) == number
        assert max(p for p, _ in factors) <= max_number


def test_repeated_primes_are_written_as_powers():
    generator = {"type": "factorize", "factors": [4, 9], "max_number": 30}
    answers = [r["answer"] for r in records(scheme(generators=[generator]), 200)]
    assert sum("^" in a for a in answers) > 100


def test_primality_matches_sympy():
    rng = np.random.default_rng(0)
    numbers = np.concatenate(
        [
            np.arange(0, 3000),
            rng.integers(10**6, 2**31, size=20_000),
            [2**31 - 1, 3_215_031_751, 25_326_001, 2_152_302_898_747, 3_474_749_660_383],
        ]
    )
    expected = np.array([sympy.isprime(int(k)) for k in numbers])
    assert (is_prime_array(numbers) == expected).all()
    big = [10**18 + 9, 10**18 + 7, 2**61 - 1, (2**61 - 1) * 1_000_003, 10**24 + 7]
    assert [is_prime(k) for k in big] == [sympy.isprime(k) for k in big]
    assert sieve().sum() == 664579  # primes below 10**7


def test_random_primes_are_prime_with_the_asked_digit_counts():
    rng = np.random.default_rng(1)
    digits = rng.integers(1, 13, size=5000)
    primes = sample_primes(rng, digits, 10**12)
    assert all(sympy.isprime(int(p)) for p in primes)
    assert ([len(str(int(p))) for p in primes] == digits).all()
    assert len(set(sample_primes(rng, np.full(2000, 1), 10).tolist())) == 4  # 2, 3, 5, 7


def test_a_prime_power_and_a_prime():
    generator = {"type": "factorize", "factors": [1, 1], "max_number": 100}
    for record in records(scheme(generators=[generator]), 200):
        number, factors = _check(record)
        assert factors == [(number, 1)] and sympy.isprime(number)


def _log_uniform_records(n=10_000, max_number=2**16 - 1, factors=(1, 15), seed=0):
    generator = {"type": "factorize", "factors": list(factors), "max_number": max_number,
                 "sampling": "log_uniform"}  # fmt: skip
    return records(scheme(generators=[generator], max_length=128), n, seed=seed)


def test_log_uniform_sampling_spreads_smallest_factors_and_factor_counts():
    rows = _log_uniform_records()
    numbers = [int(r["problem"]) for r in rows]
    factorizations = [trial_division(k) for k in numbers]
    assert all(2 <= k < 2**16 for k in numbers)
    assert all(r["answer"] == canonical(f) for r, f in zip(rows, factorizations, strict=True))
    smallest = np.array([f[0] for f in factorizations])
    counts = np.array([len(f) for f in factorizations])
    assert (smallest == 2).mean() < 0.15  # uniform numbers: one half even
    composite = counts > 1
    octaves = np.bincount(np.log2(smallest[composite]).astype(int), minlength=8)[1:8]
    assert octaves.min() > 0.04 * composite.sum(), octaves  # 2..3, 4..7, ..., 128..255
    prime_octaves = np.bincount(np.log2(smallest[~composite]).astype(int), minlength=16)[1:16]
    assert prime_octaves.max() < 3 * prime_octaves.min(), prime_octaves  # log-uniform primes
    histogram = np.bincount(counts, minlength=16)[1:]
    assert (histogram > 0).all(), histogram  # every count of factors 1..15 occurs
    assert 0.2 < histogram[0] / len(rows) < 0.4 and (counts >= 4).mean() > 0.15


def test_log_uniform_sampling_respects_its_bounds_and_refuses_what_it_cannot_draw():
    rows = _log_uniform_records(2000, max_number=10**6, factors=(2, 3))
    counts = [len(trial_division(int(r["problem"]))) for r in rows]
    assert set(counts) == {2, 3} and all(int(r["problem"]) <= 10**6 for r in rows)
    with pytest.raises(ValueError, match="digits goes with sampling 'prime_digits'"):
        scheme(generators=[{"type": "factorize", "sampling": "log_uniform", "digits": [1, 2]}])
    with pytest.raises(ValueError, match="needs max_number < 2"):
        scheme(generators=[{"type": "factorize", "sampling": "log_uniform", "max_number": 2**70}])
