"""Compiler stage 1: the program graph.

`program_graph(program)` lowers composite selectors and lists the nodes in order:

- a `SelectorAnd` / `SelectorOr` / `SelectorNot` tree over Selects becomes one `Select` whose
  keys are the tuple of the distinct key SOps of its leaves and whose queries are the tuple of
  their query SOps (built by SequenceMaps), with the tree as its predicate. One attention head
  then reads it, which is what makes composite selectors compilable (tracr refuses them); the
  tuples are None where any part is None, exactly the evaluator's rule for combined selectors;
- every node gets a unique name (a repeated name gets `#2`, `#3`, ... in graph order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from th1nker.rasp.language import (
    Aggregate,
    Expr,
    Select,
    Selector,
    SelectorAnd,
    SelectorNot,
    SelectorOr,
    SelectorWidth,
    SequenceMap,
    SOp,
    walk,
)


@dataclasses.dataclass
class ProgramGraph:
    """The lowered program: `nodes` in order (inputs first), `names` by node id (unique),
    `output` the program's SOp, `readers` by node id (the nodes that read it)."""

    output: SOp
    nodes: list[Expr]
    names: dict[int, str]
    readers: dict[int, list[Expr]]

    def name(self, node: Expr) -> str:
        return self.names[node.id]

    @property
    def sops(self) -> list[SOp]:
        return [node for node in self.nodes if isinstance(node, SOp)]


def program_graph(program: SOp) -> ProgramGraph:
    """Stage 1 (see the module docstring)."""
    if not isinstance(program, SOp):
        raise TypeError(f"a program is an SOp (one value per position), not {program!r}")
    lowered = _lower(program, {})
    nodes = walk(lowered)
    names: dict[int, str] = {}
    used: dict[str, int] = {}
    for node in nodes:
        count = used.get(node.name, 0) + 1
        used[node.name] = count
        names[node.id] = node.name if count == 1 else f"{node.name}#{count}"
    readers: dict[int, list[Expr]] = {node.id: [] for node in nodes}
    for node in nodes:
        for child in node.children:
            readers[child.id].append(node)
    return ProgramGraph(lowered, nodes, names, readers)


def _lower(node: Expr, done: dict[int, Expr]) -> Expr:
    """The node with every composite selector below it replaced (memoised by id)."""
    if node.id in done:
        return done[node.id]
    if isinstance(node, (SelectorAnd, SelectorNot)):  # SelectorOr is a SelectorAnd
        result: Expr = _lower_composite(node, done)
    elif isinstance(node, Aggregate):
        result = _rebuilt(node, selector=_lower(node.selector, done), sop=_lower(node.sop, done))
    elif isinstance(node, SelectorWidth):
        result = _rebuilt(node, selector=_lower(node.selector, done))
    elif isinstance(node, Select):
        result = _rebuilt(node, keys=_lower(node.keys, done), queries=_lower(node.queries, done))
    elif isinstance(node, SequenceMap):
        result = _rebuilt(node, first=_lower(node.first, done), second=_lower(node.second, done))
    elif hasattr(node, "sop"):  # Map
        result = _rebuilt(node, sop=_lower(node.sop, done))
    else:
        result = node
    done[node.id] = result
    return result


def _rebuilt(node: Expr, **children: Expr) -> Expr:
    """`node` itself if no child changed, else a copy (same id and name) with the new ones."""
    if all(getattr(node, key) is child for key, child in children.items()):
        return node
    copy = object.__new__(type(node))
    copy.__dict__.update(node.__dict__)
    copy.__dict__.update(children)
    return copy


def _lower_composite(selector: Selector, done: dict[int, Expr]) -> Select:
    leaves = _leaves(selector)
    keys = _distinct([_lower(leaf.keys, done) for leaf in leaves])
    queries = _distinct([_lower(leaf.queries, done) for leaf in leaves])
    test = _tree(selector, leaves, keys, queries)
    key_tuple = _packed(keys, selector.name, "keys")
    same = [sop.id for sop in keys] == [sop.id for sop in queries]
    query_tuple = key_tuple if same else _packed(queries, selector.name, "queries")
    lowered = Select(key_tuple, query_tuple, test)
    lowered.id, lowered.name = selector.id, selector.name
    return lowered


def _leaves(selector: Selector) -> list[Select]:
    if isinstance(selector, Select):
        return [selector]
    if isinstance(selector, SelectorNot):
        return _leaves(selector.selector)
    if isinstance(selector, SelectorAnd):
        return _leaves(selector.first) + _leaves(selector.second)
    raise TypeError(f"not a selector: {selector!r}")


def _distinct(sops: list[Expr]) -> list[SOp]:
    seen: dict[int, SOp] = {}
    for sop in sops:
        seen.setdefault(sop.id, sop)  # type: ignore[arg-type]
    return list(seen.values())


def _packed(sops: list[SOp], name: str, side: str) -> SOp:
    """One SOp holding the tuple of `sops` (the SOp itself when there is one)."""
    if len(sops) == 1:
        return sops[0]
    packed = SequenceMap(lambda x, y: (x, y), sops[0], sops[1]).named(f"{name}.{side}")
    for sop in sops[2:]:
        packed = SequenceMap(lambda xs, y: (*xs, y), packed, sop).named(f"{name}.{side}")
    return packed


def _tree(
    selector: Selector, leaves: list[Select], keys: list[SOp], queries: list[SOp]
) -> Callable[[object, object], bool]:
    """The predicate (key tuple, query tuple) -> bool of the selector tree."""
    key_at = {sop.id: i for i, sop in enumerate(keys)}
    query_at = {sop.id: i for i, sop in enumerate(queries)}
    single_key, single_query = len(keys) == 1, len(queries) == 1

    def leaf_test(leaf: Select) -> Callable[[object, object], bool]:
        k, q, predicate = key_at[leaf.keys.id], query_at[leaf.queries.id], leaf.predicate
        return lambda key, query: bool(
            predicate(key if single_key else key[k], query if single_query else query[q])
        )

    def build(node: Selector) -> Callable[[object, object], bool]:
        if isinstance(node, Select):
            return leaf_test(node)
        if isinstance(node, SelectorNot):
            inner = build(node.selector)
            return lambda key, query: not inner(key, query)
        first, second = build(node.first), build(node.second)  # type: ignore[attr-defined]
        if isinstance(node, SelectorOr):
            return lambda key, query: first(key, query) or second(key, query)
        return lambda key, query: first(key, query) and second(key, query)  # SelectorAnd

    return build(selector)
