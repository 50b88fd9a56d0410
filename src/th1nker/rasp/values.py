"""Compiler stage 2: the value set of every SOp, and the encodings the blocks can compile.

`infer_values(graph, vocab, max_seq_len)` gives each SOp the finite set of values it can take on
inputs over `vocab` of length 1..max_seq_len, and whether it can be None. A numerical mean's set
is the set of means of every multiset of 1..max_seq_len values it averages (tracr keeps the
averaged SOp's own set instead, which discretises a Map after a mean on the wrong points).

`check_encodings(graph, values)` refuses, before any block is built, every combination the
blocks cannot compile exactly, naming the node and what is allowed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
import operator
from collections.abc import Iterable, Sequence

import numpy as np

from th1nker.rasp.evaluate import RaspError
from th1nker.rasp.graph import ProgramGraph
from th1nker.rasp.language import (
    Aggregate,
    Full,
    Indices,
    LinearSequenceMap,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    Tokens,
    Value,
)

MAX_VALUES = 20_000  # a set larger than this is "unknown" (a block that needs it refuses)


class CompileError(ValueError):
    """A program the compiler refuses (names the node, the reason and what is allowed)."""


@dataclasses.dataclass(frozen=True)
class ValueSet:
    """`values`: the possible values other than None, sorted where they compare (None: more
    than MAX_VALUES, not listed); `may_be_none`: whether None is possible."""

    values: tuple[Value, ...] | None
    may_be_none: bool = False

    @property
    def numbers(self) -> bool:
        return self.values is not None and all(_is_number(v) for v in self.values)


def infer_values(
    graph: ProgramGraph, vocab: Sequence[Value], max_seq_len: int
) -> dict[int, ValueSet]:
    """Stage 2 (see the module docstring): the ValueSet of every SOp, by node id."""
    _check_vocab(vocab, max_seq_len)
    sets: dict[int, ValueSet] = {}
    for node in graph.sops:
        sets[node.id] = _infer(node, sets, tuple(vocab), max_seq_len, graph.name(node))
    return sets


def _infer(node: SOp, sets: dict, vocab: tuple, n: int, name: str) -> ValueSet:
    if isinstance(node, Tokens):
        return _value_set(vocab, False)
    if isinstance(node, Indices):
        return _value_set(range(n), False)
    if isinstance(node, Full):
        return _value_set([node.value], node.value is None)
    if isinstance(node, SelectorWidth):
        return _value_set(range(n + 1), False)
    if isinstance(node, Map):
        source = sets[node.sop.id]
        if source.values is None:
            return ValueSet(None, True)
        outputs = [_apply(node, name, node.f, x) for x in source.values]
        return _value_set(outputs, source.may_be_none or None in outputs)
    if isinstance(node, SequenceMap):
        first, second = sets[node.first.id], sets[node.second.id]
        if first.values is None or second.values is None:
            return ValueSet(None, True)
        if len(first.values) * len(second.values) > MAX_VALUES * 10:
            return ValueSet(None, True)
        pairs = itertools.product(first.values, second.values)
        outputs = [_apply(node, name, node.f, x, y) for x, y in pairs]
        return _value_set(outputs, first.may_be_none or second.may_be_none or None in outputs)
    if isinstance(node, Aggregate):
        source = sets[node.sop.id]
        if not node.is_numerical:
            if source.values is None:
                return ValueSet(None, True)
            none = source.may_be_none or node.default is None
            return _value_set([*source.values, node.default], none)
        if source.values is None or not source.numbers or not _is_number(node.default):
            return ValueSet(None, True)  # refused by check_encodings
        means = _means(source.values, n)
        return ValueSet(None, True) if means is None else _value_set([*means, node.default], False)
    raise TypeError(f"not an SOp: {node!r}")


def _means(values: Sequence[float | int | bool], n: int) -> list[float] | None:
    """Every mean of a multiset of 1..n elements of `values` (None: over MAX_VALUES)."""
    if set(values) == {0, 1}:  # bools: k / w, computed as the evaluator does (e.g. frac_prevs)
        return [k / w for w in range(1, n + 1) for k in range(w + 1)]
    if all(float(v).is_integer() for v in values):
        return _integer_means([int(v) for v in values], n)
    numbers = np.array([float(v) for v in values])
    sums, means = np.zeros(1), []
    for width in range(1, n + 1):  # sums rounded to 12 places, so one sum is one entry
        if sums.size * numbers.size > 10 * MAX_VALUES:
            return None
        sums = np.unique(np.round(sums[:, None] + numbers[None, :], 12))
        means.append(np.round(sums / width, 12))
    distinct = np.unique(np.concatenate(means))
    return None if distinct.size > MAX_VALUES else distinct.tolist()


def _integer_means(values: list[int], n: int) -> list[float] | None:
    """`_means` of integers: the sums of w of them, offset by w * min, as the set bits of an
    integer (bit s set: s + w * min is a sum)."""
    low = min(values)
    shifts = sorted({v - low for v in values})
    sums, means = 1, set()
    for width in range(1, n + 1):
        sums = functools.reduce(operator.or_, (sums << shift for shift in shifts))
        bits = bin(sums)[:1:-1]
        means.update((s + width * low) / width for s, bit in enumerate(bits) if bit == "1")
        if len(means) > MAX_VALUES:
            return None
    return sorted(means)


def _value_set(values: Iterable[Value], may_be_none: bool) -> ValueSet:
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    if len(distinct) > MAX_VALUES:
        return ValueSet(None, may_be_none)
    with contextlib.suppress(TypeError):  # values that do not compare keep their first order
        distinct.sort()
    if all(_is_number(v) for v in distinct):
        distinct = _merged(distinct)
    return ValueSet(tuple(distinct), may_be_none)


def _merged(numbers: list) -> list:
    """Sorted numbers with near-duplicates (float rounding of one value) merged."""
    merged: list = []
    for x in numbers:
        if merged and abs(x - merged[-1]) <= 1e-9 * max(1.0, abs(x)):
            continue
        merged.append(x)
    return merged


def _apply(node: SOp, name: str, f, *args):
    try:
        return f(*args)
    except Exception as error:
        raise RaspError(
            f"{node.kind} {name!r} failed on {args!r} (a value it can receive): {error}"
        ) from error


def _is_number(value: object) -> bool:
    return isinstance(value, (bool, int, float)) and not (
        isinstance(value, float) and math.isnan(value)
    )


def _check_vocab(vocab: Sequence[Value], max_seq_len: int) -> None:
    if not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise CompileError(f"max_seq_len {max_seq_len!r}: give a positive integer")
    if len(vocab) == 0:
        raise CompileError("vocab is empty: give the input tokens the program reads")
    if any(token is None for token in vocab):
        raise CompileError("vocab holds None: None is 'no value', never an input token")
    if len(set(vocab)) != len(vocab):
        raise CompileError(f"vocab {list(vocab)} repeats a token")


def check_encodings(graph: ProgramGraph, values: dict[int, ValueSet]) -> None:
    """Refuse what the blocks cannot compile exactly (see the module docstring)."""
    for node in graph.nodes:
        name = f"{node.kind} {graph.name(node)!r}"
        if isinstance(node, Select):
            for role, sop in (("keys", node.keys), ("queries", node.queries)):
                if sop.is_numerical:
                    raise CompileError(
                        f"{name}: its {role} {graph.name(sop)!r} are numerical; a Select "
                        "compares categorical SOps (wrap them in categorical(...))"
                    )
            continue
        if not isinstance(node, SOp):
            continue
        if isinstance(node, Aggregate):
            _check_aggregate(node, name, graph, values)
        elif isinstance(node, LinearSequenceMap) and node.is_numerical:
            for sop in (node.first, node.second):
                if not values[sop.id].numbers or values[sop.id].may_be_none:
                    raise CompileError(
                        f"{name}: its input {graph.name(sop)!r} is not always a number; "
                        "a numerical LinearSequenceMap adds numbers"
                    )
        elif isinstance(node, SequenceMap):
            for sop in (node.first, node.second):
                if sop.is_numerical:
                    raise CompileError(
                        f"{name}: its input {graph.name(sop)!r} is numerical; a SequenceMap "
                        "reads categorical inputs (a numerical sum: LinearSequenceMap)"
                    )
        own = values[node.id]
        if own.values is None:
            raise CompileError(
                f"{name}: more than {MAX_VALUES} possible values (or inputs with unknown "
                "values); it cannot be given residual directions"
            )
        if node.is_numerical and (own.may_be_none or not own.numbers):
            raise CompileError(
                f"{name} is numerical but can be None or a non-number "
                f"({_preview(own)}); a numerical encoding holds one number (make it "
                "categorical, or give an Aggregate a numeric default)"
            )


def _check_aggregate(node: Aggregate, name: str, graph: ProgramGraph, values: dict) -> None:
    source = values[node.sop.id]
    if not node.is_numerical:
        if node.sop.is_numerical:
            raise CompileError(
                f"{name} is categorical but averages the numerical {graph.name(node.sop)!r}; "
                "allowed: categorical of categorical, numerical of numerical or of "
                "categorical numbers"
            )
        return
    if not _is_number(node.default):
        raise CompileError(
            f"{name} is numerical with default {node.default!r}; a numerical Aggregate needs "
            "a numeric default (e.g. default=0)"
        )
    if not source.numbers or source.may_be_none:
        raise CompileError(
            f"numerical {name}: its values {graph.name(node.sop)!r} are not always numbers "
            f"({_preview(source)}); a mean needs numbers"
        )


def _preview(values: ValueSet) -> str:
    shown = list(values.values or ())[:6]
    more = "" if values.values is None or len(values.values) <= 6 else ", ..."
    none = ", None" if values.may_be_none else ""
    return f"values {shown}{more}{none}"
