"""Significance and ordinal positions of tokens, by hand and against a plain reference."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from th1nker.models.positions import next_digit_significance, ordinal, significance
from th1nker.tasks.vocab import BASE, EOS, EQUALS, NEG, OPERATOR_IDS, POINT

PLUS, MINUS = OPERATOR_IDS["+"], OPERATOR_IDS["-"]


def test_significance_and_ordinal_of_an_addition():
    # @ 10 | 3 2 1 (=123) | + | 5 4 (=45) | =
    ids = torch.tensor([[BASE, 10, 3, 2, 1, PLUS, 5, 4, EQUALS]])
    assert significance(ids).tolist() == [[0, 0, 0, 1, 2, 0, 0, 1, 0]]
    assert ordinal(ids).tolist() == [[0, 0, 1, 1, 1, 1, 2, 2, 2]]


def test_fraction_digits_count_down_and_stay_in_their_number():
    # 3 2 . 5 7 : 23.57 (integer LSD first, fraction MSD first)
    ids = torch.tensor([[3, 2, POINT, 5, 7, EOS]])
    assert significance(ids).tolist() == [[0, 1, 0, -1, -2, 0]]
    assert ordinal(ids).tolist() == [[1, 1, 1, 1, 1, 1]]


def test_decoder_query_positions_predict_the_next_digit():
    # decoder inputs: start ! 4 0 1  -> the next tokens are digits 0, 0, 1, 2, 3
    start = 273
    ids = torch.tensor([[start, NEG, 4, 0, 1]])
    assert next_digit_significance(ids).tolist() == [[0, 0, 1, 2, 3]]


@given(st.lists(st.lists(st.integers(0, 255), min_size=1, max_size=6), min_size=1, max_size=4))
def test_significance_matches_a_plain_loop(numbers):
    ids, expected_sig, expected_ord = [], [], []
    for k, digits in enumerate(numbers):
        if k:
            ids.append(MINUS)
            expected_sig.append(0)
            expected_ord.append(k)
        ids += digits
        expected_sig += list(range(len(digits)))
        expected_ord += [k + 1] * len(digits)
    tensor = torch.tensor([ids])
    assert significance(tensor).tolist() == [expected_sig]
    assert ordinal(tensor).tolist() == [expected_ord]
