"""Problems written in plain notation, as people type them, turned into task-language batches.

    123+456*7          arithmetic (operators + - * / % ^, standard precedence, no parentheses)
    factor 360         factorization (also `factorise`, `factorize`)
    255 to base 16     base conversion (the target base is written in decimal)

Numbers are written in `base` (2..36, digits 0-9 then a-z; default 10). Every error names the
problem, the offending text and what is allowed.
"""

from __future__ import annotations

import re

import numpy as np

from th1nker.tasks.generators import Problems
from th1nker.tasks.generators.arithmetic import ArithmeticProblems, evaluate, power_factors
from th1nker.tasks.generators.base_convert import BaseConvertProblems
from th1nker.tasks.generators.factorize import FactorizeProblems
from th1nker.tasks.numbers import ALPHANUMERIC, MAX_BASE, MIN_BASE
from th1nker.tasks.scheme import TASKS
from th1nker.tasks.stream import ProblemBatch, merge_rows
from th1nker.tasks.vocab import OPERATOR_IDS

MAX_FACTORIZE = 10**12  # trial division builds the reference factorization
MAX_EXPONENT = 1000
_FACTOR = re.compile(r"^\s*factori[sz]e?\s+(\S+)\s*$|^\s*factor\s+(\S+)\s*$", re.IGNORECASE)
_CONVERT = re.compile(r"^\s*(\S+)\s+to\s+base\s+(\S+)\s*$", re.IGNORECASE)
_TOKEN = re.compile(r"\s*(?:([0-9a-zA-Z]+)|([-+*/%^]))")


class NotationError(ValueError):
    """A problem that cannot be read; the message says where and what is allowed."""


def parse_int(text: str, base: int, problem: str) -> int:
    allowed = ALPHANUMERIC[:base]
    bad = [c for c in text.lower() if c not in allowed]
    if not text or bad:
        raise NotationError(
            f"{problem!r}: {text!r} is not a number in base {base} (digits: {allowed})"
        )
    return int(text, base)


def _factorization(n: int) -> list[int]:
    primes, p = [], 2
    while p * p <= n:
        while n % p == 0:
            primes.append(p)
            n //= p
        p += 1 if p == 2 else 2
    return primes + ([n] if n > 1 else [])


def _arithmetic(problem: str, base: int) -> ArithmeticProblems:
    pieces = []
    position = 0
    text = problem.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise NotationError(
                f"{problem!r}: cannot read {text[position:].strip()!r}; expected a number or one "
                f"of + - * / % ^ (no parentheses; forms: 'a+b*c', 'factor n', 'n to base b')"
            )
        pieces.append(match.group(1) or match.group(2))
        position = match.end()
    numbers, ops = pieces[0::2], pieces[1::2]
    if any(n in OPERATOR_IDS for n in numbers):
        raise NotationError(f"{problem!r}: operands are non-negative numbers (write 0-5, not -5)")
    if len(pieces) % 2 == 0 or any(op not in OPERATOR_IDS for op in ops):
        raise NotationError(f"{problem!r}: numbers and operators must alternate, e.g. 12+34*5")
    values = [parse_int(n, base, problem) for n in numbers]
    for k, op in enumerate(ops):
        if op == "^" and k > 0 and ops[k - 1] == "^":
            raise NotationError(f"{problem!r}: a^b^c is not part of the task language")
        if op in "/%" and values[k + 1] == 0:
            raise NotationError(f"{problem!r}: division by zero")
        if op == "^" and values[k + 1] > MAX_EXPONENT:
            raise NotationError(f"{problem!r}: exponents go up to {MAX_EXPONENT}")
    operands = np.array([values], dtype=object)
    op_ids = np.array([[OPERATOR_IDS[op] for op in ops]], dtype=np.int64).reshape(1, len(ops))
    _check_exact_divisions(problem, power_factors(operands, op_ids)[0], ops)
    n_operands = np.array([len(values)])
    return ArithmeticProblems(operands, op_ids, n_operands, evaluate(operands, op_ids, n_operands))


def _check_exact_divisions(problem: str, factors, ops: list[str]) -> None:
    """`/` must divide its term exactly (the task language has no fractions in arithmetic).

    `factors`: each operand slot's value with powers applied (`power_factors`)."""
    term = factors[0]
    for op, factor in zip(ops, factors[1:], strict=True):
        if op == "^":  # the exponent's slot: already inside the power factor
            continue
        if op in "+-":
            term = factor
        elif op == "/" and term % factor:
            raise NotationError(f"{problem!r}: {term}/{factor} is not exact ('/' divides evenly)")
        elif op == "*":
            term *= factor
        else:
            term = term // factor if op == "/" else term % factor


def parse_problem(problem: str, base: int = 10) -> tuple[Problems, int]:
    """(the problem as a one-row Problems of its generator, its output base)."""
    if not MIN_BASE <= base <= len(ALPHANUMERIC):
        raise NotationError(f"base {base}: plain notation supports bases 2..36")
    if match := _FACTOR.match(problem):
        number = parse_int(match.group(1) or match.group(2), base, problem)
        if not 2 <= number <= MAX_FACTORIZE:
            raise NotationError(f"{problem!r}: factor needs a number in 2..{MAX_FACTORIZE}")
        primes = _factorization(number)
        return FactorizeProblems(
            np.array([primes], dtype=object), np.array([len(primes)]), np.array([number], object)
        ), base
    if match := _CONVERT.match(problem):
        value = parse_int(match.group(1), base, problem)
        target = match.group(2)
        if not target.isdigit() or not MIN_BASE <= int(target) <= MAX_BASE:
            raise NotationError(f"{problem!r}: the target base must be 2..256, got {target!r}")
        return BaseConvertProblems(np.array([value], dtype=object)), int(target)
    return _arithmetic(problem, base), base


def encode_problems(problems: list[str], base: int = 10) -> ProblemBatch:
    """One batch of the parsed problems, encoded like the stream encodes them."""
    if not problems:
        raise NotationError("no problems given")
    pieces, parts = [], []
    fields = {k: np.zeros(len(problems), np.int64) for k in ("task", "base", "out_base")}
    difficulty = {k: np.zeros(len(problems), np.int64) for k in ("digits", "operands")}
    for i, text in enumerate(problems):
        parsed, out_base = parse_problem(text, base)
        row = np.array([i])
        bases, out_bases = np.array([base]), np.array([out_base])
        pieces.append((parsed.encode(bases, out_bases), row))
        parts.append((parsed, row))
        fields["task"][i] = TASKS.index(parsed.task)
        fields["base"][i], fields["out_base"][i] = base, out_base
        difficulty["digits"][i], difficulty["operands"][i] = (d[0] for d in parsed.difficulty())
    return ProblemBatch(merge_rows(len(problems), pieces), parts=parts, **fields, **difficulty)
