from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from th1nker.tasks.batch_encoding import encode_ints, row_hash
from th1nker.tasks.numbers import (
    MalformedNumber,
    decode_base_digit,
    decode_number,
    encode_base,
    encode_number,
    format_in_base,
)
from th1nker.tasks.vocab import NEG, PAD, POINT

bases = st.integers(2, 256)
integers = st.integers(-(10**60), 10**60)


@given(integers, bases)
def test_integers_round_trip_in_every_base(value, base):
    tokens = encode_number(value, base)
    assert decode_number(tokens, base) == value
    assert all(0 <= t < base for t in tokens if t != NEG)
    assert (tokens[0] == NEG) == (value < 0)


@given(st.integers(-(10**30), 10**30), st.integers(0, 40), bases)
def test_terminating_fractions_round_trip(numerator, power, base):
    value = Fraction(numerator, base**power)
    tokens = encode_number(value, base)
    decoded = decode_number(tokens, base)
    assert decoded == value
    assert (POINT in tokens) == (value.denominator != 1)


@settings(max_examples=300)
@given(st.lists(integers, min_size=1, max_size=40), st.data())
def test_batch_encoding_equals_reference(values, data):
    base = np.array(data.draw(st.lists(bases, min_size=len(values), max_size=len(values))))
    for array in (np.array(values, dtype=object), _as_int64(values)):
        if array is None:
            continue
        tokens, lengths = encode_ints(array, base)
        for i, value in enumerate(values):
            assert tokens[i, : lengths[i]].tolist() == encode_number(value, int(base[i]))
            assert (tokens[i, lengths[i] :] == PAD).all()


def _as_int64(values):
    return np.array(values, dtype=np.int64) if all(abs(v) < 2**62 for v in values) else None


def test_edge_cases():
    for base in range(2, 257):
        assert encode_number(0, base) == [0] and encode_number(1, base) == [1]
        assert encode_number(base - 1, base) == [base - 1] and encode_number(base, base) == [0, 1]
        assert encode_number(-(base**3), base) == [NEG, 0, 0, 0, 1]
    assert encode_number(0, 2) == [0]
    assert encode_number(0x123, 16) == [3, 2, 1]
    assert encode_number(255, 256) == [255]
    assert encode_number(256, 256) == [0, 1]
    assert encode_number(-1, 2) == [NEG, 1]
    assert encode_number(2**64 - 1, 2) == [1] * 64
    assert encode_number(10**20, 10) == [0] * 20 + [1]
    assert encode_number(Fraction(-5, 4), 10) == [NEG, 1, POINT, 2, 5]
    assert encode_number(Fraction(1, 3), 3) == [0, POINT, 1]
    assert encode_base(10) == [256, 10] and encode_base(256) == [256, 0]
    assert decode_base_digit(0) == 256 and decode_base_digit(2) == 2


def test_non_terminating_fraction_and_bad_base_are_refused():
    with pytest.raises(ValueError, match="no finite expansion in base 10"):
        encode_number(Fraction(1, 3), 10)
    with pytest.raises(ValueError, match=r"base must be an integer in 2..256, got 257"):
        encode_number(5, 257)
    with pytest.raises(ValueError, match="2..256, got 1"):
        encode_number(5, 1)


@pytest.mark.parametrize(
    ("tokens", "reason"),
    [
        ([], "at least one integer digit"),
        ([NEG], "at least one integer digit"),
        ([1, POINT], "followed by at least one digit"),
        ([1, POINT, 2, POINT, 3], "not a digit"),
        ([1, NEG], "not a digit"),
        ([10], "not a digit of base 10"),
        ([PAD], "'pad' is not a digit"),
    ],
)
def test_malformed_numbers_say_why(tokens, reason):
    with pytest.raises(MalformedNumber, match=reason):
        decode_number(tokens, 10)


def test_format_in_base():
    assert format_in_base(255, 16) == "ff"
    assert format_in_base(-5, 2) == "-101"
    assert format_in_base(258, 256) == "1:2"
    assert format_in_base(0, 7) == "0"


def test_row_hash_ignores_padding_width():
    tokens = np.array([[1, 2, 3, PAD], [1, 2, PAD, PAD]])
    wider = np.concatenate([tokens, np.full((2, 5), PAD)], axis=1)
    lengths = np.array([3, 2])
    assert (row_hash(tokens, lengths) == row_hash(wider, lengths)).all()
    assert row_hash(tokens, lengths)[0] != row_hash(tokens, lengths)[1]
