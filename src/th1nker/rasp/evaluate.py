"""The reference evaluator of RASP programs: plain Python, exact, the oracle of the compiler.

    evaluate(program, ["a", "b", "c"])               -> [v0, v1, v2]
    evaluate(program, inputs, causal=True)            queries see only keys at or before them

Semantics (`None` is "no value", as in tracr's evaluator, made total):
- `tokens` is the input, `indices` is 0..n-1, `Full(v)` is v everywhere;
- `Map` / `SequenceMap` give None where an input is None, f(...) elsewhere;
- `Select` selects (query q, key k) iff neither value is None and predicate(key, query); causal:
  also k <= q. `SelectorAnd` / `SelectorOr` combine elementwise and `SelectorNot` negates, all
  where every key and query value they read is defined: a None is never selected, negated,
  and-ed or or-ed (the compiled attention reads those values together);
- `Aggregate` over no selected key is its `default`; numerical: the mean of the selected values
  (all must be numbers); categorical: the selected values must all be the same (that value is the
  output; all None gives None), otherwise `RaspError` (a transformer would average one-hot
  vectors into no value of the set);
- `SelectorWidth` is the number of selected keys (0..n).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import no_type_check

from th1nker.rasp.language import (
    Aggregate,
    Expr,
    Full,
    Indices,
    Map,
    Select,
    SelectorAnd,
    SelectorNot,
    SelectorOr,
    SelectorWidth,
    SequenceMap,
    Tokens,
    Value,
    walk,
)

Matrix = list[list[bool]]


class RaspError(ValueError):
    """A program that has no value on this input (names the node and the position)."""


def evaluate(program: Expr, inputs: Sequence[Value], causal: bool = False) -> list:
    """The value of `program` (an SOp: one value per position; a Selector: its [query][key]
    matrix) on `inputs`."""
    return evaluate_all(program, inputs, causal)[program.id]


def evaluate_all(program: Expr, inputs: Sequence[Value], causal: bool = False) -> dict:
    """The value of every node of `program` on `inputs`, by node id (selectors: their
    [query][key] matrices)."""
    n = len(inputs)
    values: dict[int, object] = {}  # selectors: (selected, defined) matrices
    for node in walk(program):
        values[node.id] = _node_value(node, values, list(inputs), n, causal)
    return {k: (v[0] if isinstance(v, tuple) else v) for k, v in values.items()}


@no_type_check  # hot: kept out of the tests' type hook
def _node_value(node: Expr, values: dict, inputs: list, n: int, causal: bool):
    if isinstance(node, Tokens):
        return inputs
    if isinstance(node, Indices):
        return list(range(n))
    if isinstance(node, Full):
        return [node.value] * n
    if isinstance(node, Map):
        return [None if x is None else _call(node, node.f, x) for x in values[node.sop.id]]
    if isinstance(node, SequenceMap):
        pairs = zip(values[node.first.id], values[node.second.id], strict=True)
        return [None if x is None or y is None else _call(node, node.f, x, y) for x, y in pairs]
    if isinstance(node, Select):
        keys, queries = values[node.keys.id], values[node.queries.id]
        defined = [[q is not None and k is not None for k in keys] for q in queries]
        selected = [
            [d and bool(_call(node, node.predicate, k, q)) for k, d in zip(keys, row, strict=True)]
            for q, row in zip(queries, defined, strict=True)
        ]
        return _masked(selected, causal), _masked(defined, causal)
    if isinstance(node, SelectorNot):
        selected, defined = values[node.selector.id]
        flipped = [
            [d and not s for s, d in zip(*rows, strict=True)]
            for rows in zip(selected, defined, strict=True)
        ]
        return flipped, defined  # `defined` is already causally masked
    if isinstance(node, SelectorAnd):  # and SelectorOr
        (a, a_defined), (b, b_defined) = values[node.first.id], values[node.second.id]
        combine = (lambda x, y: x or y) if isinstance(node, SelectorOr) else (lambda x, y: x and y)
        defined = [
            [x and y for x, y in zip(*rows, strict=True)]
            for rows in zip(a_defined, b_defined, strict=True)
        ]
        selected = [
            [d and combine(x, y) for x, y, d in zip(*rows, strict=True)]
            for rows in zip(a, b, defined, strict=True)
        ]
        return selected, defined
    if isinstance(node, SelectorWidth):
        selected, _ = values[node.selector.id]
        return [sum(row) for row in selected]
    if isinstance(node, Aggregate):
        selected, _ = values[node.selector.id]
        sop = values[node.sop.id]
        return [
            _aggregate(node, [x for x, s in zip(sop, row, strict=True) if s], q)
            for q, row in enumerate(selected)
        ]
    raise TypeError(f"not a RASP expression: {node!r}")


def _aggregate(node: Aggregate, chosen: list, query: int) -> Value:
    if not chosen:
        return node.default
    if node.is_numerical:
        if any(x is None or isinstance(x, str) for x in chosen):
            raise RaspError(
                f"numerical Aggregate {node.name!r} at position {query}: the selected values "
                f"{chosen} are not all numbers"
            )
        return sum(chosen) / len(chosen)
    if any(x != chosen[0] for x in chosen):
        raise RaspError(
            f"categorical Aggregate {node.name!r} at position {query}: the selected values "
            f"{chosen} differ (a categorical mean needs one value; use numerical(...) for a mean)"
        )
    return chosen[0]


def _masked(matrix: Matrix, causal: bool) -> Matrix:
    if not causal:
        return matrix
    return [[s and k <= q for k, s in enumerate(row)] for q, row in enumerate(matrix)]


@no_type_check  # called per value: kept out of the tests' type hook
def _call(node: Expr, f, *args):
    try:
        return f(*args)
    except Exception as error:  # a user's function: say which node and which value failed
        raise RaspError(f"{node.kind} {node.name!r} failed on {args!r}: {error}") from error
