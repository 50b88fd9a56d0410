"""Problems written in plain notation, as people type them, turned into task-language batches.

    123+456*7          arithmetic (operators + - * / % ^, standard precedence, no parentheses)
    -5+-43, 1.25*4     signed and decimal operands (a '-' where a number is due is its sign)
    factor 360         factorization (also `factorise`, `factorize`)
    255 to base 16     base conversion (the target base is written in decimal)

Numbers are written in `base` (2..36, digits 0-9 then a-z; default 10). Every error names the
problem, the offending text and what is allowed. Sizes are checked before anything is computed:
at most MAX_OPERANDS operands, MAX_EXPONENT as an exponent, and no number (written or resulting)
beyond MAX_NUMBER_DIGITS decimal digits.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np

from th1nker.messages import shown
from th1nker.tasks.generators import Problems
from th1nker.tasks.generators.arithmetic import (
    ArithmeticProblems,
    Number,
    evaluate,
    power_factors,
    whole_as_int,
)
from th1nker.tasks.generators.base_convert import BaseConvertProblems
from th1nker.tasks.generators.factorize import FactorizeProblems
from th1nker.tasks.numbers import ALPHANUMERIC, MAX_BASE, MAX_NUMBER_DIGITS, MIN_BASE
from th1nker.tasks.scheme import TASKS
from th1nker.tasks.stream import ProblemBatch, merge_rows
from th1nker.tasks.vocab import OPERATOR_IDS

MAX_FACTORIZE = 10**12  # trial division builds the reference factorization
MAX_EXPONENT = 1000
MAX_OPERANDS = 64  # as in task schemes
_FACTOR = re.compile(r"^\s*factori[sz]e?\s+(\S+)\s*$|^\s*factor\s+(\S+)\s*$", re.IGNORECASE)
_CONVERT = re.compile(r"^\s*(\S+)\s+to\s+base\s+(\S+)\s*$", re.IGNORECASE)
_TOO_LARGE = (
    f"the result has more than {MAX_NUMBER_DIGITS} decimal digits, decimal places included (the "
    "most a number may have)"
)
_FORMS = "forms: 'a+b*c', 'factor n', 'n to base b'"
_TOKEN = re.compile(r"\s*(?:([0-9a-zA-Z]+(?:\.[0-9a-zA-Z]+)?)|([-+*/%^]))")


class NotationError(ValueError):
    """A problem that cannot be read; the message says where and what is allowed."""


def parse_int(text: str, base: int, problem: str) -> int:
    allowed = ALPHANUMERIC[:base]
    bad = [c for c in text.lower() if c not in allowed]
    if not text or bad:
        raise NotationError(
            f"{shown(problem)}: {shown(text)} is not a number in base {base} (digits: {allowed})"
        )
    if len(text) * math.log10(base) > MAX_NUMBER_DIGITS:  # the value is below base**len(text)
        raise NotationError(
            f"{shown(problem)}: a number of {len(text)} digits in base {base}; numbers have at "
            f"most {MAX_NUMBER_DIGITS} decimal digits"
        )
    return int(text, base)


def parse_number(text: str, base: int, problem: str) -> int | Fraction:
    """A signed integer or decimal (`-1.25`) in `base`: an int when it is whole."""
    body = text.removeprefix("-")
    whole, point, fraction = body.partition(".")
    allowed = ALPHANUMERIC[:base]
    if not whole or (point and not fraction) or set((whole + fraction).lower()) - set(allowed):
        raise NotationError(
            f"{shown(problem)}: {shown(text)} is not a number in base {base} (digits: "
            f"{allowed}, optionally a sign '-' and a point '.')"
        )
    value = parse_int(whole, base, problem)
    if fraction:
        value += Fraction(parse_int(fraction, base, problem), base ** len(fraction))
    return whole_as_int(-value if body != text else value)


def _decimal_digits_bound(bits: int) -> int:
    """Most decimal digits a number of `bits` bits can have."""
    return math.floor(bits * math.log10(2)) + 1


def _decimal_places(denominator: int) -> int:
    """Digits after the point of a decimal with this (reduced) denominator, 2**a * 5**b."""
    twos = (denominator & -denominator).bit_length() - 1
    rest, fives = denominator >> twos, 0
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    return max(twos, fives)


def _result_bits_bound(values: list[Number], ops: list[str]) -> int:
    """An upper bound on the bits of the expression's value, found without evaluating it."""
    bits = [max(1, abs(Fraction(v).numerator).bit_length()) for v in values]  # >= bits of |v|
    widest = term = bits[0]
    for k, op in enumerate(ops):
        if op == "^":  # operand k is the power's base, operand k + 1 its exponent
            term += bits[k] * (values[k + 1] - 1)
        elif op == "*":
            term += bits[k + 1]
        elif op in "+-":
            widest, term = max(widest, term), bits[k + 1]
    return max(widest, term) + len(ops)  # each + or - adds at most one bit


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
                f"{shown(problem)}: cannot read {shown(text[position:].strip())}; expected a "
                f"number or one of + - * / % ^ (no parentheses; {_FORMS})"
            )
        pieces.append(match.group(1) or match.group(2))
        position = match.end()
    pieces = _join_signs(problem, pieces)
    _check_alternation(problem, pieces)
    numbers, ops = pieces[0::2], pieces[1::2]
    if len(numbers) > MAX_OPERANDS:
        raise NotationError(f"{shown(problem)}: {len(numbers)} operands; at most {MAX_OPERANDS}")
    values = [parse_number(n, base, problem) for n in numbers]
    has_decimals = any(isinstance(v, Fraction) for v in values)
    for k, op in enumerate(ops):
        if op == "^" and k > 0 and ops[k - 1] == "^":
            raise NotationError(f"{shown(problem)}: a^b^c is not part of the task language")
        if op in "/%" and has_decimals:
            raise NotationError(
                f"{shown(problem)}: '{op}' is integer division; decimal operands go with + - * ^"
            )
        if op in "/%" and values[k + 1] == 0:
            raise NotationError(f"{shown(problem)}: division by zero")
        if op == "^" and not (isinstance(values[k + 1], int) and values[k + 1] >= 0):
            raise NotationError(
                f"{shown(problem)}: an exponent is a whole number 0..{MAX_EXPONENT}, got "
                f"{shown(numbers[k + 1])}"
            )
        if op == "^" and values[k + 1] > MAX_EXPONENT:
            raise NotationError(f"{shown(problem)}: exponents go up to {MAX_EXPONENT}")
        if op == "^" and values[k] < 0:
            raise NotationError(
                f"{shown(problem)}: {shown(numbers[k])}^...: a power of a negative number is "
                f"ambiguous (is -2^2 4 or -4?); write 0-2^2 for -(2^2)"
            )
    if _decimal_digits_bound(_result_bits_bound(values, ops)) > 2 * MAX_NUMBER_DIGITS:
        raise NotationError(f"{shown(problem)}: {_TOO_LARGE}")  # refused before computing it
    operands = np.array([values], dtype=object)
    op_ids = np.array([[OPERATOR_IDS[op] for op in ops]], dtype=np.int64).reshape(1, len(ops))
    _check_exact_divisions(problem, power_factors(operands, op_ids)[0], ops)
    n_operands = np.array([len(values)])
    result = np.array([whole_as_int(v) for v in evaluate(operands, op_ids, n_operands)], object)
    value = Fraction(result[0])
    whole = abs(value.numerator) // value.denominator
    if whole >= 10**MAX_NUMBER_DIGITS or (
        value.denominator > 1
        and _decimal_digits_bound(whole.bit_length()) + _decimal_places(value.denominator)
        > MAX_NUMBER_DIGITS
    ):
        raise NotationError(f"{shown(problem)}: {_TOO_LARGE}")
    return ArithmeticProblems(operands, op_ids, n_operands, result)


def _join_signs(problem: str, pieces: list[str]) -> list[str]:
    """Pieces with each sign joined to its number: a '-' where a number is due (at the start or
    after an operator) is the number's sign (`3*-2`, `-5+-43`, `4--1`)."""
    joined, sign = [], ""
    for piece in pieces:
        number_due = not joined or joined[-1] in OPERATOR_IDS
        if number_due and piece == "-" and not sign:
            sign = "-"
            continue
        if sign and piece in OPERATOR_IDS:
            raise NotationError(
                f"{shown(problem)}: the sign '-' is followed by {piece!r}; a number must follow "
                "it (one sign per number)"
            )
        joined.append(sign + piece)
        sign = ""
    if sign:
        raise NotationError(f"{shown(problem)}: it ends with '-'; a number must follow it")
    return joined


def _check_alternation(problem: str, pieces: list[str]) -> None:
    """Numbers at even positions, operators between them; the message names what is out of
    place."""
    if not pieces:
        raise NotationError(f"{shown(problem)}: the problem is empty; {_FORMS}")
    for k, piece in enumerate(pieces):
        is_operator = piece in OPERATOR_IDS
        if k % 2 == 0 and is_operator:
            if k == 0:
                reason = f"it starts with {piece!r}; a problem starts with a number"
            else:
                reason = (
                    f"{shown(pieces[k - 1])} is followed by {piece!r}; a number must come between"
                )
            raise NotationError(f"{shown(problem)}: {reason}")
        if k % 2 == 1 and not is_operator:
            raise NotationError(
                f"{shown(problem)}: {shown(pieces[k - 1])} and {shown(piece)} need an operator "
                "between them"
            )
    if len(pieces) % 2 == 0:
        raise NotationError(
            f"{shown(problem)}: it ends with {shown(pieces[-1])}; a number must follow it"
        )


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
            raise NotationError(
                f"{shown(problem)}: {term}/{factor} is not exact ('/' divides evenly)"
            )
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
            raise NotationError(f"{shown(problem)}: factor needs a number in 2..{MAX_FACTORIZE}")
        primes = _factorization(number)
        return FactorizeProblems(
            np.array([primes], dtype=object),
            np.array([len(primes)]),
            np.array([number], object),
            np.zeros(1, bool),
        ), base
    if match := _CONVERT.match(problem):
        value = parse_int(match.group(1), base, problem)
        target = match.group(2)
        if not target.isdigit() or not MIN_BASE <= int(target) <= MAX_BASE:
            raise NotationError(
                f"{shown(problem)}: the target base must be 2..256, got {shown(target)}"
            )
        return BaseConvertProblems(np.array([value], dtype=object), np.zeros(1, bool)), int(target)
    return _arithmetic(problem, base), base


def encode_problems(
    problems: list[str], base: int = 10, written_in: int | None = None
) -> ProblemBatch:
    """One batch of the parsed problems (numbers read in `base`), encoded like the stream
    encodes them, in base `written_in` (default: `base`; a conversion keeps its target base,
    every other answer is asked in `written_in` too)."""
    if not problems:
        raise NotationError("no problems given")
    pieces, parts = [], []
    fields = {k: np.zeros(len(problems), np.int64) for k in ("task", "base", "out_base")}
    difficulty = {k: np.zeros(len(problems), np.int64) for k in ("digits", "operands")}
    encoded_in = base if written_in is None else written_in
    for i, text in enumerate(problems):
        parsed, out_base = parse_problem(text, base)
        if parsed.task != "base_convert":
            out_base = encoded_in
        row = np.array([i])
        bases, out_bases = np.array([encoded_in]), np.array([out_base])
        pieces.append((parsed.encode(bases, out_bases), row))
        parts.append((parsed, row))
        fields["task"][i] = TASKS.index(parsed.task)
        fields["base"][i], fields["out_base"][i] = encoded_in, out_base
        difficulty["digits"][i], difficulty["operands"][i] = (d[0] for d in parsed.difficulty())
    return ProblemBatch(merge_rows(len(problems), pieces), parts=parts, **fields, **difficulty)
