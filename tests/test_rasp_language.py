"""RASP: the language, the reference evaluator's semantics, and the library against plain Python."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from th1nker.rasp.evaluate import RaspError, evaluate
from th1nker.rasp.language import (
    Aggregate,
    Comparison,
    Full,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    indices,
    numerical,
    tokens,
)
from th1nker.rasp.library import (
    PROGRAMS,
    detect_pattern,
    make_count,
    make_count_less_freq,
    make_frac_prevs,
    make_hist,
    make_length,
    make_nary_sequence_map,
    make_pair_balance,
    make_reverse,
    make_shuffle_dyck,
    make_sort,
    make_sort_freq,
    make_sort_unique,
    shift_by,
)


def test_comparisons_are_key_then_query():
    assert Comparison.LT(1, 2) and not Comparison.LT(2, 1)
    assert Comparison.GEQ(2, 2) and Comparison.NEQ(1, 2) and not Comparison.EQ(1, 2)
    assert Comparison.TRUE(None, 0) and not Comparison.FALSE(1, 1)
    before = Select(indices, indices, Comparison.LT)  # keys strictly before the query
    assert evaluate(before, "abc") == [[False] * 3, [True, False, False], [True, True, False]]


def test_operator_sugar_builds_maps_and_sequence_maps():
    x = [3, 1, 2]
    assert evaluate(tokens + 1, x) == [4, 2, 3]
    assert evaluate(10 - tokens, x) == [7, 9, 8]
    assert evaluate(tokens * indices, x) == [0, 1, 4]
    assert evaluate(tokens % 2, x) == [1, 1, 0]
    assert evaluate(tokens // 2, x) == [1, 0, 1]
    assert evaluate(-tokens, x) == [-3, -1, -2]
    assert evaluate(tokens == 1, x) == [False, True, False]
    assert evaluate(tokens < indices + 2, x) == [False, True, True]
    assert evaluate((tokens > 1) & (indices > 0), x) == [False, False, True]
    assert evaluate((tokens > 2) | (indices > 1), x) == [True, False, True]
    assert evaluate(~(tokens > 1), x) == [False, True, False]
    assert evaluate(Full(5) / 2, x) == [2.5] * 3


def test_map_of_a_map_is_one_map_with_the_same_values():
    double_plus = Map(lambda v: v * 2, tokens + 1)
    assert isinstance(double_plus, Map) and double_plus.sop is tokens
    assert evaluate(double_plus, [1, 2]) == [4, 6]
    kept = Map(lambda v: v * 2, tokens + 1, simplify=False)
    assert kept.sop is not tokens and evaluate(kept, [1, 2]) == [4, 6]
    # a None in the middle of the composition stays None (never passed to the outer function)
    maybe = Map(lambda v: None if v > 1 else v, tokens)
    assert evaluate(Map(lambda v: v + 1, maybe), [1, 2]) == [2, None]


def test_none_semantics():
    shifted = shift_by(1, tokens)  # None at position 0
    assert evaluate(shifted, "abc") == [None, "a", "b"]
    assert evaluate(shifted == "a", "abc") == [None, True, False]
    assert evaluate(SequenceMap(lambda a, b: a + b, shifted, tokens), "abc") == [None, "ab", "bc"]
    # a None key or query is never selected, negated or combined
    same = Select(shifted, shifted, Comparison.EQ)
    assert evaluate(same, "aab")[0] == [False, False, False]
    assert evaluate(~same, "aab")[0] == [False, False, False]
    assert evaluate(~same, "abc")[1] == [False, False, True]
    everything = Select(indices, indices, Comparison.TRUE)
    assert evaluate(same | everything, "aab")[0] == [False, False, False]
    assert evaluate(same | everything, "aab")[2] == [False, True, True]
    # an Aggregate over nothing is its default; of Nones, None
    nothing = Select(indices, indices, Comparison.FALSE)
    assert evaluate(Aggregate(nothing, tokens, default="z"), "ab") == ["z", "z"]
    assert evaluate(Aggregate(Select(indices, indices, Comparison.EQ), shifted), "ab") == [
        None,
        "a",
    ]


def test_causal_evaluation_hides_later_keys():
    every = Select(indices, indices, Comparison.TRUE)
    assert evaluate(SelectorWidth(every), "abcd", causal=True) == [1, 2, 3, 4]
    assert evaluate(SelectorWidth(every), "abcd") == [4, 4, 4, 4]
    assert evaluate(SelectorWidth(~Select(indices, indices, Comparison.GT)), "abc", causal=True) == [
        1, 2, 3
    ]  # fmt: skip


def test_aggregates_mean_numbers_and_refuse_mixed_categories():
    every = Select(indices, indices, Comparison.TRUE)
    assert (
        evaluate(numerical(Aggregate(every, numerical(tokens), default=0)), [1, 2, 6]) == [3.0] * 3
    )
    mixed = Aggregate(every, tokens).named("mixed")
    with pytest.raises(RaspError, match="categorical Aggregate 'mixed' at position 0.*differ"):
        evaluate(mixed, "ab")
    assert evaluate(mixed, "aa") == ["a", "a"]
    with pytest.raises(RaspError, match="numerical Aggregate .* not all numbers"):
        evaluate(numerical(Aggregate(every, tokens, default=0)), "ab")


def test_bad_programs_are_refused_with_the_operation_named():
    with pytest.raises(TypeError, match="Select: predicate 3 is not a Comparison"):
        Select(tokens, tokens, 3)
    with pytest.raises(TypeError, match="Aggregate: its selector must be a Selector"):
        Aggregate(tokens, tokens)
    with pytest.raises(ValueError, match="SequenceMap of 'tokens' with itself"):
        SequenceMap(lambda a, b: a, tokens, tokens)
    with pytest.raises(ValueError, match="non-empty string"):
        tokens.named("")
    with pytest.raises(RaspError, match="map 'boom' failed on \\(0,\\)"):
        evaluate(Map(lambda v: 1 // v, tokens).named("boom"), [0])


# the library against plain Python on random inputs ----------------------------------------


def _reference(name: str, x: list) -> list:
    n = len(x)
    if name == "length":
        return [n] * n
    if name == "reverse":
        return x[::-1]
    if name == "hist":
        return [x.count(v) for v in x]
    if name == "sort_unique":  # each value goes to the place "how many are smaller"
        out = [None] * n
        for v in x:
            out[sum(w < v for w in x)] = v
        return out
    if name == "sort":
        return sorted(x)
    if name == "sort_freq":
        counts = Counter(x)
        return [v for _, v in sorted(enumerate(x), key=lambda iv: (-counts[iv[1]], iv[0]))]
    if name == "frac_prevs":
        return [x[: i + 1].count("a") / (i + 1) for i in range(n)]
    if name == "pair_balance":
        return [(x[: i + 1].count("(") - x[: i + 1].count(")")) / (i + 1) for i in range(n)]
    if name.startswith("shuffle_dyck"):
        pairs = ["()", "{}", "[]"][: int(name[-1])]
        good = all(
            min(x[: i + 1].count(o) - x[: i + 1].count(c) for i in range(n)) >= 0
            and x.count(o) == x.count(c)
            for o, c in pairs
        )
        return [good] * n
    if name == "shift_by_2":
        return [None, None, *x[:-2]][:n]
    if name == "detect_pattern":
        return [None if i < 2 else x[i - 2 : i + 1] == list("abc") for i in range(n)]
    if name == "count_a":
        return [x.count("a")] * n
    if name == "count_less_freq":
        return [sum(x.count(v) <= 2 for v in x)] * n
    if name == "nary_sequence_map":
        return [None if i == 0 else (x[i] + x[i - 1]) % 3 == i % 3 for i in range(n)]
    if name == "full":
        return [7 + i for i in range(n)]
    raise KeyError(name)


def _close(got: list, want: list) -> bool:
    return len(got) == len(want) and all(
        (g is None) == (w is None) and (g == w or (g is not None and abs(g - w) < 1e-9))
        for g, w in zip(got, want, strict=True)
    )


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_library_program_matches_plain_python(name):
    entry = PROGRAMS[name]
    rng = random.Random(name)
    for _ in range(150):
        n = rng.randint(1, 8)
        x = [rng.choice(entry.vocab) for _ in range(n)]
        got = evaluate(entry.make(8), x, causal=entry.causal)
        assert _close(got, _reference(name, x)), (x, got)


def test_library_examples_of_tracr_documentation():
    assert evaluate(make_length(), "abcdefg") == [7] * 7
    assert evaluate(make_reverse(tokens), "Hello") == list("olleH")
    assert _close(evaluate(make_pair_balance(tokens, "(", ")"), "a()b(c))"),
                  [0, 1 / 2, 0, 0, 1 / 5, 1 / 6, 0, -1 / 8])  # fmt: skip
    dyck2 = make_shuffle_dyck(["()", "{}"])
    assert evaluate(dyck2, "({)}") == [True] * 4 and evaluate(dyck2, "(){)}") == [False] * 5
    assert evaluate(make_hist(), "abac") == [2, 1, 2, 1]
    assert evaluate(make_sort_unique(tokens, tokens), [2, 4, 3, 1]) == [1, 2, 3, 4]
    assert evaluate(make_sort(tokens, tokens, max_seq_len=5, min_key=1), [2, 4, 1, 2]) == [
        1,
        2,
        2,
        4,
    ]
    assert evaluate(make_sort_freq(5), [2, 4, 2, 1]) == [2, 2, 4, 1]
    assert _close(evaluate(make_frac_prevs(tokens == "l"), "hello"), [0, 0, 1 / 3, 1 / 2, 2 / 5])
    assert evaluate(detect_pattern(tokens, "abc"), "abcabc") == [
        None,
        None,
        True,
        False,
        False,
        True,
    ]
    assert evaluate(make_count_less_freq(2), "aaabbc") == [3] * 6
    assert evaluate(make_count_less_freq(2), "aacbbc") == [6] * 6
    assert evaluate(make_count(tokens, "a"), "aaabbc") == [3] * 6
    triple = make_nary_sequence_map(lambda a, b, c: a + b + c, tokens, tokens + 1, indices)
    assert evaluate(triple, [1, 2]) == [3, 6]
    with pytest.raises(ValueError, match="pattern"):
        detect_pattern(tokens, "")
    with pytest.raises(ValueError, match="two-character"):
        make_shuffle_dyck(["(", "{}"])
