"""Arithmetic expressions with standard precedence, evaluated exactly.

An expression joins `operands` operands by operators drawn uniformly from the configured set:
`^` binds first (the operand after it is a small exponent 0..max_exponent), then `* / %` from left
to right, then `+ -`. Results may be negative. Operands are non-negative integers unless the
scheme asks for a share of negative operands (`negative`) or of terminating decimals (`decimals`:
an integer of the drawn digit count divided by 10**places, so 123 with 2 places is 1.23; it is
stored as a `Fraction`). Three rules keep every expression well defined (docs/task-language.md):

- no `^` right after an exponent (`a^b^c` is never drawn; the operator is redrawn);
- `/` and `%` never divide by zero (their operands are drawn from 1 up);
- `/` is exact: the dividend is built as quotient x divisor. The last plain factor joined by `*`
  (or the first of the term), the *anchor*, is multiplied by the divisor, which makes the running
  product divisible. A `/` whose term has no anchor (after `%`, or after a power) becomes `*`.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import no_type_check

import numpy as np
from jaxtyping import Int, Shaped

from th1nker.tasks.batch_encoding import (
    concat_segments,
    constant_segment,
    encode_values,
    holds_fractions,
)
from th1nker.tasks.generators.base import (
    Encoded,
    Formatter,
    Problems,
    base_segment,
    number_target,
    output_base_suffix,
)
from th1nker.tasks.sampling import decimal_digits, sample_numbers
from th1nker.tasks.vocab import EOS, EQUALS, OPERATOR_IDS, PAD, TOKEN_NAMES

_PLUS, _MINUS, _MUL, _DIV, _MOD, _POW = (OPERATOR_IDS[op] for op in "+-*/%^")
Number = int | Fraction  # an operand or a value: an integer or a terminating decimal


@dataclasses.dataclass(frozen=True)
class ArithmeticProblems(Problems):
    """operands [n, S] (Python ints or Fractions, 0 in unused slots), ops [n, S-1] (operator
    token ids, pad in unused slots; ops[:, k-1] joins operands k-1 and k), n_operands [n],
    result [n] (an int where the value is whole)."""

    task = "arithmetic"
    operands: Shaped[np.ndarray, "n slots"]
    ops: Int[np.ndarray, "n joins"]
    n_operands: Int[np.ndarray, " n"]
    result: Shaped[np.ndarray, " n"]

    def difficulty(self):
        is_exponent = np.concatenate([np.zeros((len(self), 1), bool), self.ops == _POW], axis=1)
        digits = np.where(is_exponent, 0, decimal_digits(written_digits(self.operands)))
        return digits.max(axis=1), self.n_operands

    def encode(self, base, out_base) -> Encoded:
        n, slots = self.operands.shape
        segments = [base_segment(base)]
        for k in range(slots):
            active = k < self.n_operands
            if k > 0:
                segments.append((self.ops[:, k - 1 : k], active.astype(np.int64)))
            tokens, lengths = encode_values(self.operands[:, k], base)
            segments.append((tokens, np.where(active, lengths, 0)))
        segments += output_base_suffix(base, out_base)
        segments.append(constant_segment([EQUALS], np.ones(n, dtype=bool)))
        inputs = concat_segments(segments)
        return Encoded(*inputs, *number_target(self.result, out_base))

    def states(self, row: int, base: int) -> list[tuple[list[Number], list[int]]]:
        """The trace of one row in `base` (values, operator ids per state): long multiplication
        for a product of two numbers, reductions in precedence order otherwise."""
        n = int(self.n_operands[row])
        values = list(self.operands[row, :n])
        ops = [int(op) for op in self.ops[row, : n - 1]]
        if ops == [_MUL]:
            return [([v], []) for v in long_multiplication_states(*values, base)]
        return reduction_states(values, ops)

    def trace(self, base, out_base):
        states = [self.states(i, int(out_base[i])) for i in range(len(self))]
        # every number of every state encoded in one call, then laid out state by state
        values = [v for row in states for state_values, _ in row for v in state_values]
        bases = [int(out_base[i]) for i, row in enumerate(states) for vs, _ in row for _ in vs]
        digits, lengths = encode_values(np.array(values, dtype=object), np.array(bases))
        numbers = iter(digits[k, : lengths[k]].tolist() for k in range(len(values)))
        traces = []
        for row in states:
            traces.append([])
            for state_values, ops in row:
                tokens = next(numbers)
                for op, _ in zip(ops, state_values[1:], strict=True):
                    tokens += [op, *next(numbers)]
                traces[-1].append([*tokens, EOS])
        return traces

    def describe_trace(self, fmt, base, out_base):
        return [
            [
                _expression_text(values, ops, fmt, int(out_base[i]))
                for values, ops in self.states(i, int(out_base[i]))
            ]
            for i in range(len(self))
        ]

    def describe(self, fmt: Formatter, base, out_base):
        texts = []
        for i in range(len(self)):
            n = int(self.n_operands[i])
            ops = [int(op) for op in self.ops[i, : n - 1]]
            text = _expression_text(list(self.operands[i, :n]), ops, fmt, int(base[i]))
            texts.append((text, fmt(self.result[i], int(out_base[i]))))
        return texts


@no_type_check
def _apply(op: int, a: Number, b: Number) -> Number:
    if op == _PLUS:
        return a + b
    if op == _MINUS:
        return a - b
    if op == _MUL:
        return a * b
    if op == _DIV:
        return a // b
    if op == _MOD:
        return a % b
    return a**b


_LEVELS = ((_POW,), (_MUL, _DIV, _MOD), (_PLUS, _MINUS))  # reduced in this order


def reduction_states(values: list[Number], ops: list[int]) -> list[tuple[list[Number], list[int]]]:
    """The expression after each reduction, in precedence order: `^`, then `* / %` left to
    right, then `+ -` left to right (3+4*5-2 -> 3+20-2 -> 23-2 -> 21). A product of exactly two
    numbers is long multiplication instead: see `long_multiplication_states`. States are (values,
    operator ids); the last one is the value alone."""
    values, ops = list(values), list(ops)
    states = []
    for level in _LEVELS:
        k = 0
        while k < len(ops):
            if ops[k] not in level:
                k += 1
                continue
            values[k : k + 2] = [_apply(ops[k], values[k], values[k + 1])]
            del ops[k]
            states.append((list(values), list(ops)))
    return states or [(values, ops)]


def long_multiplication_states(a: Number, b: Number, base: int) -> list[Number]:
    """Long multiplication of a by b in `base`: the running sum after each digit of b, least
    significant first (47*12 in base 10 -> 94, 564); the last is a*b. Signs and decimal points
    are set on every state: b is written as the integer |b| * scale (scale: the power of `base`
    that makes it whole) and each running sum is sign * |a| * (|b| * scale mod place) / scale."""
    scale = _whole_scale(b, base)
    digits, unit = int(abs(b) * scale), (-abs(a) if (a < 0) != (b < 0) else abs(a))
    states, place = [], 1
    while True:
        place *= base
        value = unit * (digits % place)
        states.append(whole_as_int(Fraction(value) / scale if scale > 1 else value))
        if digits < place:
            return states


@no_type_check
def whole_as_int(value: Number) -> Number:
    """A Fraction with denominator 1 as a Python int; anything else unchanged."""
    return int(value) if isinstance(value, Fraction) and value.denominator == 1 else value


def written_digits(values: Shaped[np.ndarray, "*shape"]) -> Shaped[np.ndarray, "*shape"]:
    """The decimal digits each value is written with, as an integer: |x| itself for integers,
    |x| * 10**places for decimals (1.25 -> 125), so `decimal_digits` counts all of them."""
    if not holds_fractions(values):
        return values
    scaled = [int(abs(v) * _whole_scale(v, 10)) for v in values.flat]
    return np.array(scaled, dtype=object).reshape(values.shape)


@no_type_check
def _whole_scale(value, base: int) -> int:
    """The least power of `base` that makes `value` whole (1 for integers)."""
    scale = 1
    while isinstance(value, Fraction) and (value * scale).denominator != 1:
        scale *= base
    return scale


def _draw_operators(rng, n: int, slots: int, operations: str) -> Int[np.ndarray, "n joins"]:
    """Operator token ids [n, slots-1], with `^` never directly after an exponent."""
    allowed = np.array([OPERATOR_IDS[op] for op in operations])
    ops = rng.choice(allowed, size=(n, slots - 1))
    if "^" in operations and len(allowed) > 1:
        non_power = allowed[allowed != _POW]
        for k in range(1, slots - 1):
            chained = (ops[:, k] == _POW) & (ops[:, k - 1] == _POW)
            ops[chained, k] = rng.choice(non_power, size=int(chained.sum()))
    return ops


def _anchor_divisions(ops: Int[np.ndarray, "n joins"]) -> Int[np.ndarray, "n joins"]:
    """Replace `/` by `*` where its term has no anchor; return the anchor slot of every `/`.

    Returns anchors [n, S-1]: for ops[:, k-1] == `/`, the operand slot whose value gets multiplied
    by the divisor factor; -1 elsewhere. Modifies `ops` in place.
    """
    n, joins = ops.shape
    power_base = np.concatenate([ops == _POW, np.zeros((n, 1), bool)], axis=1)
    anchor = np.where(power_base[:, 0], -1, 0)
    anchors = np.full((n, joins), -1)
    for k in range(1, joins + 1):
        op = ops[:, k - 1]
        plain = ~power_base[:, k]
        new_term = (op == _PLUS) | (op == _MINUS)
        anchor = np.where(new_term, np.where(plain, k, -1), anchor)
        divide = op == _DIV
        ops[divide & (anchor < 0), k - 1] = _MUL
        divide &= anchor >= 0
        anchors[:, k - 1] = np.where(divide, anchor, -1)
        anchor = np.where((ops[:, k - 1] == _MUL) & plain, k, anchor)
        anchor = np.where(op == _MOD, -1, anchor)
    return anchors


def power_factors(operands, ops) -> Shaped[np.ndarray, "n slots"]:
    """The value each operand slot contributes: x**e for a power base, else x."""
    n = len(operands)
    if not (ops == _POW).any():
        return operands
    power_base = np.concatenate([ops == _POW, np.zeros((n, 1), bool)], axis=1)
    exponent = np.concatenate([operands[:, 1:], np.ones((n, 1), dtype=object)], axis=1)
    return np.where(power_base, operands ** np.where(power_base, exponent, 1), operands)


def evaluate(operands, ops, n_operands) -> Shaped[np.ndarray, " n"]:
    """Exact value of every expression (object arrays of Python ints), standard precedence."""
    factors = power_factors(operands, ops)
    total = np.zeros(len(operands), dtype=object)
    sign = np.ones(len(operands), dtype=object)
    term = factors[:, 0]
    for k in range(1, operands.shape[1]):
        op = np.where(k < n_operands, ops[:, k - 1], PAD)
        factor = factors[:, k]
        divisor = np.where(factor == 0, 1, factor)
        new_term = (op == _PLUS) | (op == _MINUS)
        total = np.where(new_term, total + sign * term, total)
        sign = np.where(op == _PLUS, 1, np.where(op == _MINUS, -1, sign))
        term = np.where(new_term, factor, term)
        for code, apply in ((_MUL, np.multiply), (_DIV, np.floor_divide), (_MOD, np.remainder)):
            if (here := op == code).any():
                term = np.where(here, apply(term, factor if code == _MUL else divisor), term)
    return total + sign * term


def sample_arithmetic(
    rng: np.random.Generator,
    n: int,
    operands: tuple[int, int],
    operations: str,
    digits: tuple[int, int],
    max_number: int | None,
    max_exponent: int,
    negative: float = 0.0,
    decimals: float = 0.0,
    decimal_places: tuple[int, int] = (1, 2),
) -> ArithmeticProblems:
    """`n` expressions with a uniform operand count in `operands` (see the module docstring).

    `negative`, `decimals`: the share of operands drawn negative / as decimals with a uniform
    count of places in `decimal_places` (exponents never; power bases are never negative, so
    that -2^2 means one thing). Decimals go with `+ - * ^` only (the scheme checks)."""
    slots = operands[1]
    n_operands = rng.integers(operands[0], operands[1], size=n, endpoint=True)
    ops = _draw_operators(rng, n, slots, operations) if slots > 1 else np.zeros((n, 0), np.int64)
    inactive = np.arange(slots) >= n_operands[:, None]
    ops[inactive[:, 1:]] = PAD
    anchors = _anchor_divisions(ops)
    joined_by = np.concatenate([np.full((n, 1), PAD), ops], axis=1)
    operands = np.zeros((n, slots), dtype=object)
    for k in range(slots):
        column, _ = sample_numbers(rng, digits, n, max_number)
        column = column.astype(object)
        divisor = (joined_by[:, k] == _DIV) | (joined_by[:, k] == _MOD)
        if divisor.any():
            nonzero, _ = sample_numbers(rng, digits, n, max_number, nonzero=True)
            column = np.where(divisor, nonzero.astype(object), column)
        if (exponent := joined_by[:, k] == _POW).any():
            powers = rng.integers(0, max_exponent, size=n, endpoint=True).astype(object)
            column = np.where(exponent, powers, column)
        plain = ~exponent
        if decimals:
            places = rng.integers(*decimal_places, size=n, endpoint=True)
            chosen = np.flatnonzero((rng.random(n) < decimals) & plain)
            column[chosen] = [
                whole_as_int(Fraction(column[i], 10 ** int(places[i]))) for i in chosen
            ]
        if negative:
            power_base = ops[:, k] == _POW if k < slots - 1 else np.zeros(n, bool)
            flip = (rng.random(n) < negative) & plain & ~power_base
            column = np.where(flip, -column, column)
        operands[:, k] = column
    operands[inactive] = 0
    factors = power_factors(operands, ops)
    for k in range(1, slots):
        rows = np.flatnonzero(anchors[:, k - 1] >= 0)
        operands[rows, anchors[rows, k - 1]] *= factors[rows, k]
    result = evaluate(operands, ops, n_operands)
    if decimals:
        result = np.array([whole_as_int(v) for v in result], dtype=object)
    return ArithmeticProblems(operands, ops, n_operands, result)


def _expression_text(values: list[Number], ops: list[int], fmt: Formatter, base: int) -> str:
    parts = [fmt(values[0], base)]
    for op, value in zip(ops, values[1:], strict=True):
        parts += [TOKEN_NAMES[op], fmt(value, base)]
    return "".join(parts)
