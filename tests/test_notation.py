"""Plain notation (`th1nker solve` input) -> task-language problems, checked against Python."""

from fractions import Fraction

import pytest
import torch
from helpers import scheme
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import decimal_text, evaluate

from th1nker.solve import reading_base
from th1nker.tasks.generators import decimal
from th1nker.tasks.notation import NotationError, encode_problems, parse_problem
from th1nker.tasks.numbers import format_in_base


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 10**12), min_size=1, max_size=6),
    st.lists(st.sampled_from("+-*%"), min_size=5, max_size=5),
)
def test_expressions_evaluate_like_python(values, ops):
    ops = [
        op if values[k + 1] or op not in "%" else "+" for k, op in enumerate(ops[: len(values) - 1])
    ]
    text = str(values[0]) + "".join(op + str(v) for op, v in zip(ops, values[1:], strict=True))
    problems, out_base = parse_problem(text)
    assert out_base == 10
    assert problems.result[0] == eval(text)  # non-negative operands: // and % agree with Python


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.integers(-(10**12), 10**12).map(str)
        | st.tuples(st.integers(-(10**6), 10**6), st.integers(1, 8)).map(
            lambda v: decimal_text(Fraction(v[0], 10 ** v[1]))  # a terminating decimal
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.sampled_from("+-*"), min_size=5, max_size=5),
)
def test_signed_and_decimal_expressions_evaluate_like_the_reference(numbers, ops):
    text = numbers[0] + "".join(op + n for op, n in zip(ops, numbers[1:], strict=False))
    problems, _ = parse_problem(text)
    assert problems.result[0] == evaluate(text)
    assert encode_problems([text]).describe(decimal)[0] == (text, decimal_text(evaluate(text)))


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("-5+-43", "-48"),
        ("3*-2", "-6"),
        ("1.25*4", "5"),
        ("4--1", "5"),
        ("-0.5-0.25", "-0.75"),
        ("0.1+0.2", "0.3"),
        ("10/-2", "-5"),
        ("0-2^2", "-4"),
        ("2^10/4", "256"),
        ("3*2^5-100", "-4"),
        ("0-0", "0"),
        ("99999999999+1", "100000000000"),
        ("factor 360", "2^3*3^2*5"),
        ("factor 97", "97"),
        ("factor 1024", "2^10"),
        ("factorise 999983", "999983"),
        ("255 to base 16", "255"),
    ],
)
def test_hand_picked_problems(text, answer):
    assert encode_problems([text]).describe(decimal)[0][1] == answer


def test_numbers_in_another_base_and_conversion_targets():
    batch = encode_problems(["ff+1", "ff to base 2"], base=16)
    assert batch.describe(decimal) == [("255+1", "256"), ("255", "255")]
    assert batch.describe(format_in_base)[1] == ("ff", "11111111")
    assert batch.base.tolist() == [16, 16] and batch.out_base.tolist() == [16, 2]


def test_many_problems_make_one_padded_batch():
    batch = encode_problems(["1+1", "123456789*987654321", "factor 12"])
    tensors = batch.to_tensors()
    assert tensors["input_ids"].shape[0] == 3
    assert tensors["input_mask"].sum(1).tolist() == batch.encoded.input_len.tolist()
    assert batch.digits.tolist() == [1, 9, 2] and batch.operands.tolist() == [2, 2, 3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1+", "ends with '\\+'; a number must follow"),
        ("--5", "the sign '-' is followed by '-'"),
        ("3*-", "ends with '-'"),
        ("1.+2", "cannot read '.\\+2'"),
        ("1.5/3", "'/' is integer division; decimal operands go with"),
        ("-2^2", "a power of a negative number is ambiguous"),
        ("2^-1", "an exponent is a whole number"),
        ("2^0.5", "an exponent is a whole number"),
        ("0.5^1000*0.5^1000*0.5^1000*0.5^1000*0.5^1000", "more than 4000 decimal digits"),
        ("", "empty"),
        ("   ", "empty"),
        ("1++2", "'\\+' is followed by '\\+'"),
        ("+3", "starts with '\\+'"),
        ("12 34", "'12' and '34' need an operator"),
        ("9" * 10_000 + "+1", "10000 digits in base 10; numbers have at most 4000"),
        ("99999^1000", "more than 4000 decimal digits"),
        ("9" * 4000 + "^1000", "more than 4000 decimal digits"),
        ("9" * 2001 + "*" + "9" * 2000, "more than 4000 decimal digits"),
        ("+".join(["1"] * 65), "65 operands; at most 64"),
        ("2^3^2", r"a\^b\^c"),
        ("10/3", "not exact"),
        ("1%0", "division by zero"),
        ("factor 0", "factor needs"),
        ("factor 10000000000000", "factor needs"),
        ("(1+2)", "cannot read"),
        ("12 to base 1", "target base"),
        ("2^5000", "exponents go up to"),
    ],
)
def test_unreadable_problems(text, message):
    """Refused with the right reason, before anything large is computed."""
    with pytest.raises(NotationError, match=message):
        parse_problem(text)
    with pytest.raises(NotationError, match="bases 2..36"):
        parse_problem("1+1", base=40)


def test_the_largest_numbers_and_results_are_read():
    assert parse_problem("9" * 4000)[0].result[0] == 10**4000 - 1
    assert parse_problem("9" * 2000 + "*" + "9" * 2000)[0].result[0] == (10**2000 - 1) ** 2
    assert parse_problem("+".join(["1"] * 64))[0].result[0] == 64


def test_long_problems_are_shown_shortened_in_messages():
    with pytest.raises(NotationError) as error:
        parse_problem("9" * 10_000 + "+")
    assert len(str(error.value)) < 200 and "(10001 characters)" in str(error.value)


def test_problems_can_be_given_to_a_model_in_its_own_base():
    batch = encode_problems(["factor 360", "255 to base 16", "12+3"], 10, written_in=30)
    tensors = batch.to_tensors()
    assert tensors["base"].tolist() == [30, 30, 30]
    assert tensors["out_base"].tolist() == [30, 16, 30]  # a conversion keeps its target base
    same = encode_problems(["factor c0", "8f to base 16", "c+3"], 30).to_tensors()
    for name in ("input_ids", "target_ids", "base", "out_base"):
        assert torch.equal(tensors[name], same[name]), name
    assert reading_base(scheme(bases={"values": [30]}), 10) == 30
    assert reading_base(scheme(bases={"values": [2, 10]}), 10) == 10
