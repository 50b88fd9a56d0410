"""RASP programs for the task language's own problems (docs/task-language.md).

`make_addition(base)` reads a problem as the task language writes it, token ids

    @ b  a0 a1 .. a(m-1)  +  b0 b1 .. b(n-1)  =          (digits least significant first)

and writes the answer's token ids at positions 0, 1, ..: the digits of a + b least significant
first, then eos, then pad. The carry into digit i is the generate bit (a_j + b_j >= base) of the
last position j < i that does not propagate (a_j + b_j != base - 1): with c_i the number of
non-propagating positions before i, that is the non-propagating j with c_j = c_i - 1, found by
one attention head (a composite selector); none means no carry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from th1nker.rasp.language import (
    Aggregate,
    Comparison,
    LinearSequenceMap,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    indices,
    tokens,
)
from th1nker.tasks.scheme import ArithmeticSpec, TaskScheme
from th1nker.tasks.vocab import BASE, EOS, EQUALS, PAD, TOKEN_IDS


def addition_vocab(base: int) -> tuple[int, ...]:
    """The token ids an addition problem in `base` is made of."""
    marker = TOKEN_IDS[str(base % 256)]  # base 256 is written `@ 0`
    return tuple(sorted({*range(base), marker, BASE, TOKEN_IDS["+"], EQUALS}))


def make_addition(base: int = 10) -> SOp:
    """The answer tokens of `@ base a + b =` (module docstring)."""
    if not 2 <= base <= 256:
        raise ValueError(f"base {base}: give 2..256")
    plus, eos, pad = TOKEN_IDS["+"], EOS, PAD
    where_plus = Select(tokens, tokens, lambda k, q: k == plus).named("where_plus")
    plus_at = Aggregate(where_plus, indices, default=0).named("plus_at")
    length = SelectorWidth(Select(tokens, tokens, Comparison.TRUE)).named("length")
    first_digits = (plus_at - 2).named("a_digits")  # a starts after `@ b`
    second_digits = SequenceMap(lambda n, p: n - p - 2, length, plus_at).named("b_digits")

    def digit(offset: SOp, count: SOp, name: str) -> SOp:
        """The operand's digit i at position i (0 past its end)."""
        source = Select(indices, offset, Comparison.EQ).named(f"{name}_source")
        token = Aggregate(source, tokens, default=0).named(f"{name}_token")
        inside = (indices < count).named(f"{name}_inside")
        return SequenceMap(lambda t, ok: t if ok and t < base else 0, token, inside).named(name)

    a = digit((indices + 2).named("a_at"), first_digits, "a")
    b_at = SequenceMap(lambda i, p: i + p + 1, indices, plus_at).named("b_at")
    b = digit(b_at, second_digits, "b")
    column = LinearSequenceMap(a, b, 1, 1).named("column")  # a_i + b_i, numerical
    stops = Map(lambda s: s != base - 1, column).named("stops")  # no carry passes through
    earlier_stop = Select(indices, indices, Comparison.LT) & Select(stops, stops,
                                                                    lambda k, q: k)  # fmt: skip
    stops_before = SelectorWidth(earlier_stop.named("earlier_stop")).named("stops_before")
    last_stop = Select(stops_before, stops_before, lambda k, q: k == q - 1) & Select(
        stops, stops, lambda k, q: k
    )
    generates = Map(lambda s: s >= base, column).named("generates")
    carry = Aggregate(last_stop.named("last_stop"), generates, default=False).named("carry")
    total = LinearSequenceMap(column, carry, 1, 1).named("column_and_carry")
    digits = Map(lambda t: int(t) % base, total).named("sum_digit")
    longest = SequenceMap(max, first_digits, second_digits).named("longest")
    top_carry = Aggregate(Select(indices, longest, Comparison.EQ), carry, default=False)
    answer_length = SequenceMap(lambda m, c: m + c, longest, top_carry.named("top_carry"))
    place = SequenceMap(
        lambda i, n: (i > n) - (i < n), indices, answer_length.named("answer_length")
    )
    return SequenceMap(
        lambda d, where: d if where < 0 else (eos if where == 0 else pad),
        digits,
        place.named("place"),
    ).named("addition")


def addition_refusal(task: TaskScheme, base: int) -> str | None:
    """Why the compiled addition cannot answer the task's problems (None: it can)."""
    for i, spec in enumerate(task.generators):
        if not isinstance(spec, ArithmeticSpec):
            return f"task.generators[{i}] is {spec.type}; the compiled addition answers a+b"
        if tuple(spec.operands) != (2, 2) or spec.operations != "+":
            return (
                f"task.generators[{i}]: operands {list(spec.operands)} with operations "
                f"{spec.operations!r}; the compiled addition answers two operands joined by '+'"
            )
        if spec.negative or spec.decimals:
            return f"task.generators[{i}]: signed or decimal operands; it adds natural numbers"
    outputs = task.bases.values if task.output_base == "input" else task.output_base.values
    if set(task.bases.values) != {base} or set(outputs) != {base}:
        return f"task bases {task.bases.values}: the program was compiled for base {base} only"
    return None


@dataclasses.dataclass(frozen=True)
class TaskProgram:
    """A program that answers task-language problems: base -> program, base -> the token ids
    it reads, and why it cannot answer a task's problems (None: it can)."""

    make: Callable[[int], SOp]
    vocab: Callable[[int], tuple[int, ...]]
    refusal: Callable[[TaskScheme, int], str | None]


TASK_PROGRAMS: dict[str, TaskProgram] = {
    "addition": TaskProgram(make_addition, addition_vocab, addition_refusal),
}
