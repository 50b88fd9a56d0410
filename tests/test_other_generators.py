from collections import Counter

import numpy as np
import pytest
from helpers import records, scheme
from reference import read_number, split_numbers

from th1nker.tasks.vocab import BLANK, EOS, TOKEN_IDS


def test_10000_base_conversions_match_python_integers():
    generator = {"type": "base_convert", "digits": [1, 30], "negative": True}
    bases = {"values": [2, 3, 7, 10, 16, 256]}
    task_scheme = scheme(generators=[generator], bases=bases, max_length=256)
    seen = Counter()
    for r in records(task_scheme, 10_000):
        ids = r["input_ids"]
        parts = split_numbers(ids)
        assert (
            parts[0] == "@" and parts[2] == "output:base" and parts[3] == "@" and parts[-1] == "="
        )
        base, out_base = parts[1][0] or 256, parts[4][0] or 256
        assert (base, out_base) == (r["base"], r["out_base"]) and base != out_base
        value = read_number(parts[1][1:], base)
        assert read_number(r["target_ids"][:-1], out_base) == value == int(r["answer"])
        assert r["target_ids"][-1] == EOS
        seen[value < 0] += 1
        seen[(base, out_base)] += 1
    assert seen[True] > 4000 and seen[False] > 4000
    assert len([k for k in seen if isinstance(k, tuple)]) == 30  # every ordered pair of bases


def test_copy_and_reverse_targets():
    generators = [{"type": "copy", "length": [1, 12]}, {"type": "reverse", "length": [1, 12]}]
    for r in records(scheme(generators=generators), 10_000):
        marker, *symbols, equals = r["input_ids"]
        assert equals == TOKEN_IDS["="] and all(0 <= s < 256 for s in symbols)
        expected = symbols if r["task"] == "copy" else symbols[::-1]
        assert marker == TOKEN_IDS[f"task:{r['task']}"]
        assert r["target_ids"] == expected + [EOS]


def test_recall_targets():
    generator = {"type": "recall", "items": [2, 8], "item_len": 2, "bits": 3}  # collisions happen
    for r in records(scheme(generators=[generator]), 10_000):
        ids = r["input_ids"]
        assert ids[0] == TOKEN_IDS["task:recall"]
        equals = ids.index(TOKEN_IDS["="])
        items, item = [], []
        for token in ids[1:equals] + [BLANK]:
            if token == BLANK:
                items.append(item)
                item = []
            else:
                item.append(token)
        query = ids[equals + 1 :]
        first = items.index(query)
        assert first < len(items) - 1
        assert r["target_ids"] == items[first + 1] + [EOS]


def test_mqar_targets_against_a_dictionary():
    """Each answer is the value its key was given, read back with a Python dict from the input
    tokens alone; keys are distinct, keys and values from disjoint halves, queries distinct."""
    generator = {"type": "mqar", "pairs": [1, 12], "queries": 5, "bits": 5}
    for r in records(scheme(generators=[generator], max_length=64), 5000):
        ids = r["input_ids"]
        assert ids[0] == TOKEN_IDS["task:recall"]
        equals = ids.index(TOKEN_IDS["="])
        pairs, asked = ids[1:equals], ids[equals + 1 :]
        keys, values = pairs[0::2], pairs[1::2]
        assert len(set(keys)) == len(keys) == len(values) and 1 <= len(keys) <= 12
        assert all(k < 16 for k in keys) and all(16 <= v < 32 for v in values)
        assert len(set(asked)) == len(asked) == min(5, len(keys))
        table = dict(zip(keys, values, strict=True))
        assert r["target_ids"] == [table[q] for q in asked] + [EOS]


def test_mqar_causal_stream_holds_the_same_problems():
    from th1nker.tasks.generators import sample_mqar

    problems = sample_mqar(np.random.default_rng(1), 300, (1, 9), 4, 6)
    tokens, answers = problems.sequences()
    encoded = problems.encode(None, None)
    for i in range(len(problems)):
        p, q = problems.n_pairs[i], problems.n_queries[i]
        row = tokens[i]
        assert list(row[: 2 * p]) == list(encoded.input_ids[i, 1 : 1 + 2 * p])
        (where,) = np.nonzero(answers[i])
        assert list(where) == [2 * p + 2 * j for j in range(q)]
        assert list(row[where + 1]) == list(encoded.target_ids[i, :q])  # the next token: a_j
        assert list(row[where]) == list(encoded.input_ids[i, 2 + 2 * p : 2 + 2 * p + q])


def test_mqar_refuses_more_pairs_than_distinct_keys():
    with pytest.raises(ValueError, match=r"pairs \[1, 40\] must lie within \[1, 32\]"):
        scheme(generators=[{"type": "mqar", "pairs": [1, 40], "bits": 6}])
