"""Numbers as tokens, one value at a time: the reference encoding of the task language.

A number in base b (2..256) is written as

    [!] d0 d1 ... dk [. f1 f2 ... fm]

`!` marks a negative number, the integer digits come least significant first (base 16 "123" is
3 2 1), and a fractional part follows `.` most significant first. Any integer or fraction whose
expansion terminates in base b round-trips exactly. A base itself is written `@` plus one digit
token holding it, with token 0 standing for base 256.

`th1nker.tasks.batch_encoding` encodes whole arrays of integers at once; tests hold it equal to
this module. The helpers called once per number are `@no_type_check`: the tests' jaxtyping hook
would otherwise cost more than they do (tests/conftest.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import no_type_check

from th1nker.tasks.vocab import BASE, N_DIGITS, NEG, POINT, token_name

MIN_BASE, MAX_BASE = 2, 256
MAX_NUMBER_DIGITS = 4000
"""The task language's numbers (operands and results, in generators and in plain notation) have at
most this many decimal digits: below Python's 4300-digit limit on int <-> str conversion, so every
number can be printed and read back."""
ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyz"


class MalformedNumber(ValueError):
    """Tokens that do not spell a number in the given base; the message says why."""


@no_type_check
def check_base(base: int) -> int:
    """Return `base` if it is an integer in 2..256, else raise a ValueError naming the range."""
    if isinstance(base, bool) or not isinstance(base, int) or not MIN_BASE <= base <= MAX_BASE:
        raise ValueError(f"base must be an integer in {MIN_BASE}..{MAX_BASE}, got {base!r}")
    return base


def encode_base(base: int) -> list[int]:
    """`@` followed by the digit token holding `base` (token 0 stands for 256)."""
    return [BASE, check_base(base) % N_DIGITS]


@no_type_check
def decode_base_digit(token: int) -> int:
    """The base held by the digit token after `@`: 0 means 256; 1 and non-digits are malformed."""
    if not 0 <= token < N_DIGITS or token == 1:
        raise MalformedNumber(
            f"token {token_name(token)!r} after '@' is not a base (2..255, 0=256)"
        )
    return token or N_DIGITS


@no_type_check
def _terminates_in(denominator: int, base: int) -> bool:
    """True when 1/denominator has a finite expansion in `base` (its primes all divide base)."""
    while True:
        common = math.gcd(denominator, base)
        if common == 1:
            return denominator == 1
        while denominator % common == 0:
            denominator //= common


@no_type_check
def encode_number(value: int | Fraction, base: int) -> list[int]:
    """Tokens of an integer or terminating fraction in `base`.

    >>> encode_number(0x123, 16)
    [3, 2, 1]
    >>> encode_number(Fraction(-5, 4), 10)   # -1.25
    [258, 1, 257, 2, 5]
    """
    check_base(base)
    tokens = [NEG] if value < 0 else []
    if isinstance(value, int):
        return tokens + _integer_digits_lsd_first(abs(value), base)
    value = Fraction(value)
    if not _terminates_in(value.denominator, base):
        raise ValueError(f"{value} has no finite expansion in base {base}")
    numerator, denominator = abs(value.numerator), value.denominator
    integer, remainder = divmod(numerator, denominator)
    tokens += _integer_digits_lsd_first(integer, base)
    if remainder:
        tokens.append(POINT)
        while remainder:  # long division in integers: digit = floor(remainder * base / d)
            digit, remainder = divmod(remainder * base, denominator)
            tokens.append(digit)
    return tokens


@no_type_check
def _integer_digits_lsd_first(value: int, base: int) -> list[int]:
    digits = []
    while True:
        value, digit = divmod(value, base)
        digits.append(digit)
        if value == 0:
            return digits


@no_type_check
def decode_number(tokens: Sequence[int], base: int) -> int | Fraction:
    """The value spelled by `tokens` in `base`; an int when there is no fractional part.

    Raises MalformedNumber (saying why) for an empty number, a misplaced `!` or `.`, a digit not
    below the base, or any non-digit token.
    """
    check_base(base)
    tokens = [int(t) for t in tokens]
    negative = bool(tokens) and tokens[0] == NEG
    body = tokens[1:] if negative else tokens
    if POINT in body:
        point = body.index(POINT)
        integer_part, fraction_part = body[:point], body[point + 1 :]
        if not fraction_part:
            raise MalformedNumber("'.' must be followed by at least one digit")
    else:
        integer_part, fraction_part = body, []
    if not integer_part:
        raise MalformedNumber("a number needs at least one integer digit")
    for token in integer_part + fraction_part:
        if not 0 <= token < base:
            raise MalformedNumber(f"token {token_name(token)!r} is not a digit of base {base}")
    integer = 0
    for digit in reversed(integer_part):
        integer = integer * base + digit
    if not fraction_part:
        return -integer if negative else integer
    numerator = 0
    for digit in fraction_part:
        numerator = numerator * base + digit
    value = integer + Fraction(numerator, base ** len(fraction_part))
    return -value if negative else value


@no_type_check
def format_in_base(value: int | Fraction, base: int) -> str:
    """A person-readable number in `base`, most significant digit first; a terminating fraction
    gets its fractional digits after '.' (`format_in_base(Fraction(-5, 4), 10)` is '-1.25').

    Bases up to 36 use 0-9a-z; larger bases write each digit in decimal, separated by ':'
    (base 256 value 258 is '1:2').
    """
    tokens = encode_number(value, base)
    negative = tokens[:1] == [NEG]
    body = tokens[1:] if negative else tokens
    point = body.index(POINT) if POINT in body else len(body)
    integer, fraction = body[:point][::-1], body[point + 1 :]
    if base <= len(ALPHANUMERIC):
        text = "".join(ALPHANUMERIC[d] for d in integer)
        text += "." + "".join(ALPHANUMERIC[d] for d in fraction) if fraction else ""
    else:
        text = ":".join(str(d) for d in integer)
        text += "." + ":".join(str(d) for d in fraction) if fraction else ""
    return ("-" if negative else "") + text
