"""A library of RASP programs (the programs of tracr's `lib`, with the same meaning).

Each `make_*` builds a fresh program; `PROGRAMS` names those used by the tests, the benchmark and
`th1nker compile`, with the vocabulary and the causal mode each is meant for. Programs marked
`causal` compute at each position from the positions up to it only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from th1nker.rasp.language import (
    Aggregate,
    Comparison,
    Full,
    LinearSequenceMap,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    Value,
    indices,
    numerical,
    tokens,
)


def make_length() -> SOp:
    """The sequence length at every position: `length("abc") == [3, 3, 3]`."""
    every = Select(tokens, tokens, Comparison.TRUE).named("every")
    return SelectorWidth(every).named("length")


def make_reverse(sop: SOp) -> SOp:
    """`sop` backwards: `reverse("abc") == ["c", "b", "a"]`."""
    mirror = (make_length() - indices - 1).named("mirror")
    flip = Select(indices, mirror, Comparison.EQ).named("flip")
    return Aggregate(flip, sop).named("reverse")


def make_hist() -> SOp:
    """How often each position's token occurs: `hist("abac") == [2, 1, 2, 1]`."""
    same = Select(tokens, tokens, Comparison.EQ).named("same_token")
    return SelectorWidth(same).named("hist")


def make_sort_unique(values: SOp, keys: SOp) -> SOp:
    """`values` ordered by `keys` (the keys must be distinct)."""
    smaller = Select(keys, keys, Comparison.LT).named("smaller")
    target = SelectorWidth(smaller).named("target_position")
    place = Select(target, indices, Comparison.EQ).named("place")
    return Aggregate(place, values).named("sort_unique")


def make_sort(values: SOp, keys: SOp, *, max_seq_len: int, min_key: float | int) -> SOp:
    """`values` ordered by `keys`, ties kept in input order: each key is made distinct by adding
    min_key * index / max_seq_len (numerical keys only, all >= min_key > 0)."""
    distinct = SequenceMap(lambda x, i: x + min_key * i / max_seq_len, keys, indices)
    return make_sort_unique(values, distinct.named("distinct_keys")).named("sort")


def make_sort_freq(max_seq_len: int) -> SOp:
    """The tokens ordered by falling frequency, ties in input order."""
    negated = (-1 * make_hist()).named("minus_hist")
    return make_sort(tokens, negated, max_seq_len=max_seq_len, min_key=1).named("sort_freq")


def make_frac_prevs(bools: SOp) -> SOp:
    """The fraction of positions up to each one where `bools` holds (numerical; causal)."""
    up_to_here = Select(indices, indices, Comparison.LEQ).named("up_to_here")
    return numerical(Aggregate(up_to_here, numerical(bools), default=0)).named("frac_prevs")


def make_pair_balance(sop: SOp, open_token: str, close_token: str) -> SOp:
    """The fraction of opening minus the fraction of closing tokens up to each position."""
    opens = make_frac_prevs(sop == open_token).named(f"opens_{open_token}")
    closes = make_frac_prevs(sop == close_token).named(f"closes_{close_token}")
    return LinearSequenceMap(opens, closes, 1, -1).named(f"balance_{open_token}{close_token}")


def make_shuffle_dyck(pairs: Sequence[str]) -> SOp:
    """1 everywhere if every bracket type of `pairs` (e.g. ["()", "{}"]) is balanced on its
    own (the shuffle-Dyck language), 0 everywhere otherwise."""
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"pairs {list(pairs)}: give two-character strings like '()'")
    balances = [make_pair_balance(tokens, *pair) for pair in pairs]
    any_negative = balances[0] < 0
    all_zero = balances[0] == 0
    for balance in balances[1:]:
        any_negative = any_negative | (balance < 0)
        all_zero = all_zero & (balance == 0)
    negative_here = numerical(Map(lambda x: x, any_negative)).named("negative_here")
    every = Select(indices, indices, Comparison.TRUE).named("every")
    ever_negative = numerical(Aggregate(every, negative_here, default=0)).named("ever_negative")
    last = Select(indices, make_length() - 1, Comparison.EQ).named("last")
    closed = Aggregate(last, all_zero).named("closed_at_end")
    never_negative = (~ever_negative).named("never_negative")
    return (closed & never_negative).named("shuffle_dyck")


def shift_by(offset: int, sop: SOp) -> SOp:
    """`sop` moved `offset` positions right, None in front."""
    back = Select(indices, indices, lambda k, q: q == k + offset).named(f"back_{offset}")
    return Aggregate(back, sop, default=None).named(f"shift_by_{offset}")


def detect_pattern(sop: SOp, pattern: Sequence[Value]) -> SOp:
    """True at the last position of each occurrence of `pattern` in `sop` (None for the first
    len(pattern) - 1 positions)."""
    if len(pattern) < 1:
        raise ValueError(f"pattern {pattern!r}: give at least one value")
    found = sop == pattern[-1]
    for back, element in enumerate(reversed(pattern[:-1]), start=1):
        found = shift_by(back, sop == element) & found
    return found.named("detect_pattern")


def make_count(sop: SOp, token: Value) -> SOp:
    """How often `token` occurs in `sop`, at every position."""
    hits = Select(sop, sop, lambda k, q: k == token).named(f"is_{token}")
    return SelectorWidth(hits).named(f"count_{token}")


def make_count_less_freq(n: int) -> SOp:
    """How many positions hold a token that occurs at most `n` times, at every position."""
    hist = make_hist()
    rare = Select(hist, hist, lambda k, q: k <= n).named("rare")
    return SelectorWidth(rare).named("count_less_freq")


def make_nary_sequence_map(f: Callable[..., Value], *sops: SOp) -> SOp:
    """f(x1, .., xn) at every position: n-1 SequenceMaps into tuples, then one Map (the tuples
    are categorical: the model grows with the product of the value sets)."""
    if len(sops) < 2:
        raise ValueError("make_nary_sequence_map needs at least two SOps")
    packed = SequenceMap(lambda x, y: (x, y), sops[0], sops[1])
    for sop in sops[2:]:
        packed = SequenceMap(lambda xs, y: (*xs, y), packed, sop)
    return Map(lambda xs: f(*xs), packed).named("nary_sequence_map")


@dataclasses.dataclass(frozen=True)
class LibraryProgram:
    """A library program with the vocabulary it is meant for and its evaluation mode."""

    make: Callable[[int], SOp]  # max_seq_len -> program
    vocab: tuple[Value, ...]
    causal: bool = False
    numerical_output: bool = False


_LETTERS = ("a", "b", "c")
_NUMBERS = (1, 2, 3, 4, 5)

PROGRAMS: dict[str, LibraryProgram] = {
    "length": LibraryProgram(lambda n: make_length(), _LETTERS),
    "reverse": LibraryProgram(lambda n: make_reverse(tokens), _LETTERS),
    "hist": LibraryProgram(lambda n: make_hist(), _LETTERS),
    "sort_unique": LibraryProgram(lambda n: make_sort_unique(tokens, tokens), _NUMBERS),
    "sort": LibraryProgram(lambda n: make_sort(tokens, tokens, max_seq_len=n, min_key=1), _NUMBERS),
    "sort_freq": LibraryProgram(make_sort_freq, _LETTERS),
    "frac_prevs": LibraryProgram(
        lambda n: make_frac_prevs(tokens == "a"), ("a", "b"), causal=True, numerical_output=True
    ),
    "pair_balance": LibraryProgram(
        lambda n: make_pair_balance(tokens, "(", ")"), ("(", ")", "x"), numerical_output=True
    ),
    "shuffle_dyck2": LibraryProgram(lambda n: make_shuffle_dyck(["()", "{}"]), tuple("(){}")),
    "shuffle_dyck3": LibraryProgram(
        lambda n: make_shuffle_dyck(["()", "{}", "[]"]), tuple("(){}[]")
    ),
    "shift_by_2": LibraryProgram(lambda n: shift_by(2, tokens), _LETTERS, causal=True),
    "detect_pattern": LibraryProgram(
        lambda n: detect_pattern(tokens, "abc"), _LETTERS, causal=True
    ),
    "count_a": LibraryProgram(lambda n: make_count(tokens, "a"), _LETTERS),
    "count_less_freq": LibraryProgram(lambda n: make_count_less_freq(2), _LETTERS),
    "nary_sequence_map": LibraryProgram(
        lambda n: make_nary_sequence_map(
            lambda x, y, z: (x + y) % 3 == z, tokens, shift_by(1, tokens), indices % 3
        ),
        (0, 1, 2),
        causal=True,
    ),
    "full": LibraryProgram(lambda n: Full(7) + indices, _LETTERS),
}
