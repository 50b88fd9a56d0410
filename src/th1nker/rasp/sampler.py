"""Random RASP programs, for testing the compiler against the evaluator (as in Langosco et al.
2024, "Learning to compile programs to neural networks": operations, arguments and encodings
drawn at random over a pool of earlier SOps).

    program = sample_program(random.Random(0), operations=6)

Programs read `tokens` over SAMPLE_VOCAB (small integers) and `indices`; each new operation
reads SOps already in the pool (so programs are DAGs with shared subterms), and the program is
the last one. Maps and SequenceMaps take functions from small fixed tables; Selects any
comparison; Aggregates are numerical (a mean of numbers) or categorical; selectors are combined
with And / Or / Not at random. A drawn program may be refused by the compiler or have no value
on some inputs (a categorical mean of different values): callers skip those, and count them.
"""

from __future__ import annotations

import operator
import random

from th1nker.rasp.language import (
    Aggregate,
    Comparison,
    Encoding,
    LinearSequenceMap,
    Map,
    Select,
    Selector,
    SelectorWidth,
    SequenceMap,
    SOp,
    indices,
    numerical,
    tokens,
)

SAMPLE_VOCAB = (0, 1, 2, 3, 4)

MAPS = {
    "x+1": lambda x: x + 1,
    "x-1": lambda x: x - 1,
    "2x": lambda x: 2 * x,
    "x%3": lambda x: x % 3,
    "x>1": lambda x: x > 1,
    "x==0": lambda x: x == 0,
    "-x": operator.neg,
    "min(x,3)": lambda x: min(x, 3),
    "x>0.5": lambda x: x > 0.5,
    "round(x)": lambda x: round(x),
}
SEQUENCE_MAPS = {
    "x+y": operator.add,
    "x-y": operator.sub,
    "x*y": operator.mul,
    "max": max,
    "x==y": operator.eq,
    "x<y": operator.lt,
    "x and y": lambda x, y: bool(x and y),
    "(x+y)%4": lambda x, y: (x + y) % 4,
}


def sample_program(rng: random.Random, operations: int = 6) -> SOp:
    """A random program of `operations` operations (module docstring)."""
    pool: list[SOp] = [tokens, indices]
    for _ in range(operations):
        pool.append(_operation(rng, pool))
    return pool[-1]


def _operation(rng: random.Random, pool: list[SOp]) -> SOp:
    categorical = [s for s in pool if not s.is_numerical]
    kind = rng.choice(["map", "map", "sequence_map", "linear", "aggregate", "aggregate", "width"])
    if kind == "map":
        name, f = rng.choice(list(MAPS.items()))
        encoding = rng.choice(list(Encoding))
        return Map(f, rng.choice(pool), encoding=encoding, simplify=False).named(f"map[{name}]")
    if kind == "sequence_map" and len(categorical) >= 2:
        name, f = rng.choice(list(SEQUENCE_MAPS.items()))
        first, second = rng.sample(categorical, 2)
        return SequenceMap(f, first, second, encoding=rng.choice(list(Encoding))).named(
            f"sequence_map[{name}]"
        )
    if kind == "linear" and len(pool) >= 2:
        first, second = rng.sample(pool, 2)
        a, b = rng.choice([1, -1, 2, 0.5]), rng.choice([1, -1, 3])
        return LinearSequenceMap(first, second, a, b).named(f"linear[{a}x+{b}y]")
    selector = _selector(rng, categorical)
    if kind == "width":
        return SelectorWidth(selector, encoding=rng.choice(list(Encoding))).named("width")
    values = rng.choice(pool)
    if values.is_numerical or rng.random() < 0.5:
        return numerical(Aggregate(selector, values, default=0)).named("mean")
    return Aggregate(selector, values).named("aggregate")


def _selector(rng: random.Random, categorical: list[SOp]) -> Selector:
    def leaf() -> Selector:
        keys, queries = rng.choice(categorical), rng.choice(categorical)
        return Select(keys, queries, rng.choice(list(Comparison)))

    selector = leaf()
    roll = rng.random()
    if roll < 0.15:
        selector = selector & leaf()
    elif roll < 0.25:
        selector = selector | leaf()
    elif roll < 0.35:
        selector = ~selector
    return selector
