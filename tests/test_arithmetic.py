import re
from fractions import Fraction

import numpy as np
import pytest
from helpers import records, scheme
from reference import decimal_text, evaluate, read_expression, read_number

from th1nker.tasks.generators.arithmetic import ArithmeticProblems
from th1nker.tasks.generators.arithmetic import evaluate as fast_evaluate
from th1nker.tasks.scheme import SchemeError, load_scheme
from th1nker.tasks.vocab import EOS, NEG, OPERATOR_IDS, PAD

ALL_OPS = {"type": "arithmetic", "operands": [1, 7], "operations": "+-*/%^", "digits": [1, 12]}
MIXED_BASES = {"values": [2, 3, 10, 16, 255, 256]}


def _check(record):
    expression, base, out_base = read_expression(record["input_ids"])
    assert (base, out_base) == (record["base"], record["out_base"])
    assert expression == record["problem"]
    assert record["target_ids"][-1] == EOS
    value = read_number(record["target_ids"][:-1], out_base)
    assert value == evaluate(expression)
    assert decimal_text(value) == record["answer"]
    return value


@pytest.mark.parametrize(
    "generator",
    [
        ALL_OPS,
        {"type": "arithmetic", "operands": [2, 9], "operations": "+-*", "digits": [1, 10]},
        {"type": "arithmetic", "operands": [2, 2], "operations": "+-", "digits": [1, 10]},
        {"type": "arithmetic", "operands": [2, 5], "operations": "/%", "digits": [1, 4]},
    ],
)
def test_10000_expressions_match_python_integers(generator):
    task_scheme = scheme(generators=[generator], bases=MIXED_BASES, max_length=4096)
    values = [_check(r) for r in records(task_scheme, 10_000)]
    assert min(values) < 0 or "-" not in generator["operations"]
    for op in generator["operations"]:  # every operator really occurs
        assert any(op in r["problem"] for r in records(task_scheme, 300, seed=1))


def test_divisions_are_exact_and_never_by_zero():
    generator = {**ALL_OPS, "operations": "*/%", "operands": [2, 8]}
    task_scheme = scheme(generators=[generator], max_length=4096)
    problems = [r["problem"] for r in records(task_scheme, 3000)]
    assert sum(p.count("/") for p in problems) > 1000
    for p in problems:
        evaluate(p)  # raises ZeroDivisionError on a zero divisor, asserts every `/` is exact


def _one(operands, ops, base, out_base=None):
    operands = np.array([operands], dtype=object)
    ops = np.array([[OPERATOR_IDS[o] for o in ops]], dtype=np.int64)
    n_operands = np.array([operands.shape[1]])
    problems = ArithmeticProblems(
        operands, ops, n_operands, fast_evaluate(operands, ops, n_operands)
    )
    out_base = base if out_base is None else out_base
    encoded = problems.encode(np.array([base]), np.array([out_base]))
    return encoded.target_ids[0, : encoded.target_len[0]].tolist()


def test_hand_picked_edge_cases():
    assert _one([9_999_999_999, 1], "+", 10) == [0] * 10 + [1, EOS]  # carry through every digit
    assert _one([0, 0], "-", 10) == [0, EOS]
    assert _one([1, 2], "-", 10) == [NEG, 1, EOS]  # below zero
    assert _one([2**64 - 1, 1], "+", 2) == [0] * 64 + [1, EOS]
    assert _one([255, 1], "+", 256) == [0, 1, EOS]
    assert _one([2, 3, 2], "+*", 10) == [8, EOS]  # precedence: 2+3*2
    assert _one([2, 3, 2], "*^", 10) == [8, 1, EOS]  # 2*3^2 = 18
    assert _one([7, 3, 2], "-%", 10) == [6, EOS]  # 7-3%2
    assert _one([12, 4, 3], "/*", 10) == [9, EOS]  # left to right: 12/4*3
    assert _one([5, 0], "^", 10) == [1, EOS]
    assert _one([255], "", 10, out_base=16) == [15, 15, EOS]


def test_operand_sizes_cover_short_and_long_numbers():
    digits = [
        len(str(int(p)))
        for r in records([], 4000)
        for p in r["problem"].replace("-", "+").split("+")
    ]
    counts = np.bincount(digits, minlength=11)[1:]
    assert counts.min() > 0.6 * counts.mean()  # digit counts are uniform, 1..10
    assert PAD not in records([], 1)[0]["input_ids"]


SIGNED = {"type": "arithmetic", "operands": [2, 4], "digits": [1, 6], "negative": 0.3}


@pytest.mark.parametrize(
    ("generator", "bases"),
    [
        ({**SIGNED, "operations": "+-*/%^"}, MIXED_BASES),
        ({**SIGNED, "operations": "+-*^", "decimals": 0.5, "decimal_places": [1, 4]},
         {"values": [10, 20, 250]}),
    ],
    ids=["signed", "signed-decimal"],
)  # fmt: skip
def test_10000_signed_and_decimal_expressions_match_python(generator, bases):
    task_scheme = scheme(generators=[generator], bases=bases, max_length=4096)
    rows = records(task_scheme, 10_000)
    for r in rows:
        _check(r)
    operands = [
        (number, op)  # each operand with the operator before it ('' for the first)
        for r in rows
        for op, number in re.findall(r"(^|[-+*/%^])(-?\d+(?:\.\d+)?)", r["problem"])
    ]
    plain = [n for n, op in operands if op != "^"]
    negative_share = sum(n.startswith("-") for n in plain) / len(plain)
    assert 0.2 < negative_share < 0.3  # 0.3 of operands that are neither exponents nor bases
    assert not any(n.startswith("-") or "." in n for n, op in operands if op == "^")
    assert not re.search(r"(^|[-+*/%^])-\d+(\.\d+)?\^", " ".join(r["problem"] for r in rows))
    decimals = [n for n in plain if "." in n]
    if generator.get("decimals"):
        assert 0.3 < len(decimals) / len(plain) < 0.5  # some come out whole (120 / 10**1)
        assert {len(n.split(".")[1]) for n in decimals} == {1, 2, 3, 4}
    else:
        assert not decimals


def test_decimals_refuse_integer_division_and_bases_without_tenths():
    decimals = ["generators.0.decimals=0.5"]
    with pytest.raises(SchemeError, match=r"generators.0.*decimals 0.5 goes with operations fro"):
        load_scheme(None, [*decimals, "generators.0.operations='+/'"])
    with pytest.raises(SchemeError, match=r"bases divisible by 10.*\[2, 16\]"):
        load_scheme(None, [*decimals, "bases.values=[2,10,16]"])


@pytest.mark.parametrize(
    ("operands", "ops", "answer"),
    [
        ([-5, -43], "+", "-48"),
        ([3, -2], "*", "-6"),
        ([Fraction(5, 4), 4], "*", "5"),
        ([Fraction(-1, 20), Fraction(1, 20)], "+", "0"),
        ([Fraction(1, 2), 3], "^", "0.125"),
        ([-7, 3], "%", "2"),
        ([10**11, -(10**11)], "-", "200000000000"),
    ],
)
def test_hand_picked_signed_and_decimal_operands(operands, ops, answer):
    out_base = 10
    tokens = _one(operands, ops, out_base)
    assert tokens[-1] == EOS and decimal_text(read_number(tokens[:-1], out_base)) == answer
