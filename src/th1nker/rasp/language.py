"""RASP (Weiss et al. 2021, "Thinking Like Transformers") as Python expressions.

A program is a graph of expressions over one input sequence:

    SOp       a sequence of values, one per position:   tokens, indices, Full(v),
              Map(f, x), SequenceMap(f, x, y), LinearSequenceMap(x, y, a, b),
              Aggregate(selector, x, default), SelectorWidth(selector)
    Selector  a [query, key] boolean matrix:             Select(keys, queries, predicate),
              SelectorAnd(a, b), SelectorOr(a, b), SelectorNot(a)   (also a & b, a | b, ~a)

Every SOp is `categorical` (a value from a finite set: one residual direction per value) or
`numerical` (a number: one residual direction holding it); `numerical(x)` / `categorical(x)`
return a copy with that encoding. Operator sugar builds Maps and SequenceMaps: `x + 1`,
`x - y`, `x * 2`, `x / y`, `x // 2`, `x % 3`, `x == "a"`, `x < y`, `x & y`, `x | y`, `~x`
(logical), `-x`. A predicate compares a key with a
query: `predicate(key, query)`, e.g. `Comparison.LT` is `key < query`. The semantics (and of
None) are those of `th1nker.rasp.evaluate`.
"""

from __future__ import annotations

import enum
import itertools
import operator
from collections.abc import Callable, Hashable
from typing import Any, no_type_check

Value = Hashable

_ids = itertools.count()


class Encoding(enum.Enum):
    CATEGORICAL = "categorical"
    NUMERICAL = "numerical"


class Comparison(enum.Enum):
    """The predicates of Select, called as predicate(key, query)."""

    EQ = "=="
    LT = "<"
    LEQ = "<="
    GT = ">"
    GEQ = ">="
    NEQ = "!="
    TRUE = "true"
    FALSE = "false"

    @no_type_check  # called per (key, query) pair: kept out of the tests' type hook
    def __call__(self, key: Value, query: Value) -> bool:
        return bool(_COMPARE[self._value_](key, query))


_COMPARE = {  # by the members' values: a str hash is cheaper than an Enum member's
    "==": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "!=": operator.ne,
    "true": lambda key, query: True,
    "false": lambda key, query: False,
}

Predicate = Comparison | Callable[[Value, Value], bool]


class Expr:
    """A node of a RASP program: a unique `id`, a `name` (`.named(...)`), its `children`."""

    kind = "expr"

    def __init__(self) -> None:
        self.id = next(_ids)
        self.name = f"{self.kind}_{self.id}"

    @property
    def children(self) -> tuple[Expr, ...]:
        return ()

    def named(self, name: str) -> Expr:
        """Name this node (residual directions and layer roles are called by it)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a RASP name must be a non-empty string, not {name!r}")
        self.name = name
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    __hash__ = object.__hash__


class SOp(Expr):
    """A sequence operation: one value per position (see the module docstring)."""

    kind = "sop"

    def __init__(self, encoding: Encoding = Encoding.CATEGORICAL) -> None:
        super().__init__()
        self.encoding = encoding

    def named(self, name: str) -> SOp:
        super().named(name)
        return self

    @property
    @no_type_check  # hot: kept out of the tests' type hook
    def is_numerical(self) -> bool:
        return self.encoding is Encoding.NUMERICAL

    def with_encoding(self, encoding: Encoding) -> SOp:
        """A copy of this node (same children and function, a new id) with `encoding`."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.id = next(_ids)
        copy.encoding = encoding
        return copy

    # operator sugar: an SOp on one side, a constant or an SOp on the other
    def _binary(self, other: Any, f: Callable[[Any, Any], Any], symbol: str) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(f, self, other).named(f"({self.name} {symbol} {other.name})")
        if isinstance(other, Expr):
            raise TypeError(f"{symbol}: a Selector is not a value (got {other!r})")
        return Map(lambda x: f(x, other), self).named(f"({self.name} {symbol} {other!r})")

    def _reflected(self, other: Any, f: Callable[[Any, Any], Any], symbol: str) -> SOp:
        return Map(lambda x: f(other, x), self).named(f"({other!r} {symbol} {self.name})")

    def __add__(self, other):
        return self._binary(other, operator.add, "+")

    def __radd__(self, other):
        return self._reflected(other, operator.add, "+")

    def __sub__(self, other):
        return self._binary(other, operator.sub, "-")

    def __rsub__(self, other):
        return self._reflected(other, operator.sub, "-")

    def __mul__(self, other):
        return self._binary(other, operator.mul, "*")

    def __rmul__(self, other):
        return self._reflected(other, operator.mul, "*")

    def __truediv__(self, other):
        return self._binary(other, operator.truediv, "/")

    def __rtruediv__(self, other):
        return self._reflected(other, operator.truediv, "/")

    def __floordiv__(self, other):
        return self._binary(other, operator.floordiv, "//")

    def __mod__(self, other):
        return self._binary(other, operator.mod, "%")

    def __neg__(self):
        return Map(operator.neg, self).named(f"(-{self.name})")

    def __eq__(self, other):  # type: ignore[override]
        return self._binary(other, operator.eq, "==")

    def __ne__(self, other):  # type: ignore[override]
        return self._binary(other, operator.ne, "!=")

    def __lt__(self, other):
        return self._binary(other, operator.lt, "<")

    def __le__(self, other):
        return self._binary(other, operator.le, "<=")

    def __gt__(self, other):
        return self._binary(other, operator.gt, ">")

    def __ge__(self, other):
        return self._binary(other, operator.ge, ">=")

    def __and__(self, other):
        return self._binary(other, lambda x, y: bool(x and y), "&")

    def __or__(self, other):
        return self._binary(other, lambda x, y: bool(x or y), "|")

    def __invert__(self):
        return Map(lambda x: not x, self).named(f"(~{self.name})")

    __hash__ = Expr.__hash__


class Tokens(SOp):
    kind = "tokens"

    def __init__(self) -> None:
        super().__init__()
        self.name = "tokens"


class Indices(SOp):
    kind = "indices"

    def __init__(self) -> None:
        super().__init__()
        self.name = "indices"


tokens = Tokens()
indices = Indices()


class Full(SOp):
    """The same value at every position."""

    kind = "full"

    def __init__(self, value: Value, encoding: Encoding = Encoding.CATEGORICAL) -> None:
        super().__init__(encoding)
        self.value = value


class Map(SOp):
    """f(x) at every position. `simplify`: a Map of a Map becomes one Map of the composition
    (one MLP instead of two), as in tracr."""

    kind = "map"

    @no_type_check  # checks its own arguments, with messages for RASP users
    def __init__(
        self,
        f: Callable[[Value], Value],
        sop: SOp,
        encoding: Encoding = Encoding.CATEGORICAL,
        simplify: bool = True,
    ) -> None:
        super().__init__(encoding)
        _require(sop, SOp, "Map", "its input")
        if simplify and type(sop) is Map:
            f, sop = _compose(f, sop.f), sop.sop
        self.f, self.sop = f, sop

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.sop,)


class SequenceMap(SOp):
    """f(x, y) at every position."""

    kind = "sequence_map"

    @no_type_check  # checks its own arguments, with messages for RASP users
    def __init__(
        self,
        f: Callable[[Value, Value], Value],
        first: SOp,
        second: SOp,
        encoding: Encoding = Encoding.CATEGORICAL,
    ) -> None:
        super().__init__(encoding)
        _require(first, SOp, "SequenceMap", "its first input")
        _require(second, SOp, "SequenceMap", "its second input")
        if first is second:
            raise ValueError(
                f"SequenceMap of {first.name!r} with itself: use Map(lambda x: f(x, x), ...)"
            )
        self.f, self.first, self.second = f, first, second

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.first, self.second)


class LinearSequenceMap(SequenceMap):
    """a * x + b * y at every position (numerical: compiled without a lookup table)."""

    kind = "linear_sequence_map"

    @no_type_check  # checks its own arguments, with messages for RASP users
    def __init__(
        self,
        first: SOp,
        second: SOp,
        first_factor: float,
        second_factor: float,
        encoding: Encoding = Encoding.NUMERICAL,
    ) -> None:
        a, b = first_factor, second_factor
        super().__init__(lambda x, y: a * x + b * y, first, second, encoding)
        self.first_factor, self.second_factor = a, b


class Selector(Expr):
    """A [query, key] boolean matrix (see the module docstring)."""

    kind = "selector"

    def named(self, name: str) -> Selector:
        super().named(name)
        return self

    def __and__(self, other: Selector) -> Selector:
        return SelectorAnd(self, other)

    def __or__(self, other: Selector) -> Selector:
        return SelectorOr(self, other)

    def __invert__(self) -> Selector:
        return SelectorNot(self)


class Select(Selector):
    """selected[q, k] = predicate(keys[k], queries[q])."""

    kind = "select"

    @no_type_check  # checks its own arguments, with messages for RASP users
    def __init__(self, keys: SOp, queries: SOp, predicate: Predicate) -> None:
        super().__init__()
        _require(keys, SOp, "Select", "keys")
        _require(queries, SOp, "Select", "queries")
        if not callable(predicate):
            raise TypeError(
                f"Select: predicate {predicate!r} is not a Comparison "
                f"({', '.join(c.name for c in Comparison)}) or a function (key, query) -> bool"
            )
        self.keys, self.queries, self.predicate = keys, queries, predicate

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.keys, self.queries)


class SelectorAnd(Selector):
    kind = "selector_and"

    @no_type_check  # checks its own arguments, with messages for RASP users
    def __init__(self, first: Selector, second: Selector) -> None:
        super().__init__()
        _require(first, Selector, "SelectorAnd", "its first input")
        _require(second, Selector, "SelectorAnd", "its second input")
        self.first, self.second = first, second

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.first, self.second)


class SelectorOr(SelectorAnd):
    kind = "selector_or"


class SelectorNot(Selector):
    kind = "selector_not"

    @no_type_check  # checks its own arguments, with messages for RASP users
    def __init__(self, selector: Selector) -> None:
        super().__init__()
        _require(selector, Selector, "SelectorNot", "its input")
        self.selector = selector

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.selector,)


class Aggregate(SOp):
    """The mean of `sop` over the selected keys of each query (`default` where none is);
    categorical: every selected value must be the same (it is the output)."""

    kind = "aggregate"

    @no_type_check  # checks its own arguments, with messages for RASP users
    def __init__(
        self,
        selector: Selector,
        sop: SOp,
        default: Value = None,
        encoding: Encoding = Encoding.CATEGORICAL,
    ) -> None:
        super().__init__(encoding)
        _require(selector, Selector, "Aggregate", "its selector")
        _require(sop, SOp, "Aggregate", "its values")
        self.selector, self.sop, self.default = selector, sop, default

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.selector, self.sop)


class SelectorWidth(SOp):
    """The number of keys each query selects (an integer 0..length)."""

    kind = "selector_width"

    @no_type_check  # checks its own arguments, with messages for RASP users
    def __init__(self, selector: Selector, encoding: Encoding = Encoding.CATEGORICAL) -> None:
        super().__init__(encoding)
        _require(selector, Selector, "SelectorWidth", "its selector")
        self.selector = selector

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.selector,)


@no_type_check
def numerical(sop: SOp) -> SOp:
    """A numerical copy of `sop` (one residual direction holding the number)."""
    _require(sop, SOp, "numerical", "its argument")
    return sop.with_encoding(Encoding.NUMERICAL)


@no_type_check
def categorical(sop: SOp) -> SOp:
    """A categorical copy of `sop` (one residual direction per value)."""
    _require(sop, SOp, "categorical", "its argument")
    return sop.with_encoding(Encoding.CATEGORICAL)


def walk(program: Expr) -> list[Expr]:
    """Every node of the program once, inputs before the nodes that read them."""
    order: list[Expr] = []
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(program, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node.id in seen:
            continue
        seen.add(node.id)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.children) if child.id not in seen)
    return order


def _compose(outer: Callable, inner: Callable) -> Callable:
    """x -> outer(inner(x)), None where inner gives None (the semantics of two Maps)."""

    def composed(x):
        y = inner(x)
        return None if y is None else outer(y)

    return composed


def _require(value: Any, kind: type, operation: str, role: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{operation}: {role} must be a {kind.__name__}, not {value!r}")
