"""Exact answer checking: decode a model's output tokens and compare with the truth.

Numeric answers are compared by value (so a redundant leading zero is still right). A
factorization is right when every factor is prime and the factors multiply to the input, in any
order or grouping. Copy, reverse and recall compare the symbols exactly. Malformed outputs are
wrong with a reason; checking never raises on model output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction

import torch

from th1nker.tasks.numbers import MalformedNumber, decode_base_digit, decode_number
from th1nker.tasks.primes import MAX_PRIME_BOUND, is_prime
from th1nker.tasks.scheme import TASKS
from th1nker.tasks.vocab import (
    BASE,
    EOS,
    EQUALS,
    MUL,
    OUTPUT_BASE,
    PAD,
    POW,
    TASK_FACTORISE,
    TOKEN_NAMES,
)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether an output is right, its decoded value as text ('' if none) and why it is wrong."""

    correct: bool
    value: str = ""
    reason: str = ""


def answer_tokens(output_ids: Sequence[int]) -> list[int]:
    """The answer part of an output: up to (not including) the first `eos` or `pad`."""
    answer = []
    for token in output_ids:
        if token in (EOS, PAD):
            break
        answer.append(int(token))
    return answer


def decode_factorization(tokens: Sequence[int], base: int) -> list[tuple[int, int]]:
    """[(factor, exponent), ...] of `f1 [^ e1] * f2 [^ e2] ...`; raises MalformedNumber."""
    factors = []
    groups: list[list[int]] = [[]]
    for token in tokens:
        if token == MUL:
            groups.append([])
        else:
            groups[-1].append(token)
    for group in groups:
        if group.count(POW) > 1:
            raise MalformedNumber("a factor has more than one '^'")
        factor_tokens, _, exponent_tokens = _split_at(group, POW)
        factor = decode_number(factor_tokens, base)
        exponent = decode_number(exponent_tokens, base) if POW in group else 1
        if isinstance(factor, Fraction) or isinstance(exponent, Fraction):
            raise MalformedNumber("factors and exponents are integers")
        factors.append((factor, exponent))
    return factors


def _split_at(tokens: list[int], separator: int) -> tuple[list[int], bool, list[int]]:
    if separator not in tokens:
        return tokens, False, []
    i = tokens.index(separator)
    return tokens[:i], True, tokens[i + 1 :]


def factorised_number(input_ids: Sequence[int]) -> tuple[int, int]:
    """(number, base) of a factorization input `task:factorise @ b digits ... =`."""
    ids = [int(t) for t in input_ids]
    if len(ids) < 4 or ids[0] != TASK_FACTORISE or ids[1] != BASE:
        raise MalformedNumber("not a factorization input (task:factorise @ b ...)")
    base = decode_base_digit(ids[2])
    stops = (EQUALS, OUTPUT_BASE, PAD, EOS)
    end = next((i for i in range(3, len(ids)) if ids[i] in stops), len(ids))
    value = decode_number(ids[3:end], base)
    return int(value), base


def canonical_factorization(factors: list[tuple[int, int]]) -> str:
    """`p1^e1*p2*...` in decimal, factors ascending, equal factors merged (exponent 1 unwritten)."""
    merged: dict[int, int] = {}
    for factor, exponent in factors:
        merged[factor] = merged.get(factor, 0) + exponent
    return "*".join(
        f"{_bounded(p)}^{_bounded(e)}" if e != 1 else _bounded(p) for p, e in sorted(merged.items())
    )


def _bounded(value: int) -> str:
    """Decimal text of a number from model output, elided past 1000 digits (Python refuses
    to print longer ones)."""
    if value.bit_length() > 3000:
        return f"<a number of {value.bit_length()} bits>"
    return str(value)


def _check_factorization(input_ids, answer: list[int], out_base: int) -> Verdict:
    """Right iff every factor is prime, exponents positive and the product is the number; the
    Verdict's value is the answer in canonical form."""
    number, _ = factorised_number(input_ids)
    factors = decode_factorization(answer, out_base)
    text = canonical_factorization(factors)
    product = 1
    for prime, exponent in factors:
        if exponent < 1:
            return Verdict(False, text, f"exponent {exponent} is not positive")
        if not 2 <= prime < MAX_PRIME_BOUND or not is_prime(prime):
            return Verdict(False, text, f"factor {prime} is not prime")
        if exponent > number.bit_length():  # prime**exponent > number: never computed
            return Verdict(False, text, f"factors multiply to more than {number}")
        product *= prime**exponent
        if product > number:
            return Verdict(False, text, f"factors multiply to more than {number}")
    if product != number:
        return Verdict(False, text, f"factors multiply to {product}, not {number}")
    return Verdict(True, text)


VERIFIABLE = ("factorize",)  # tasks whose answers can be checked from the problem alone


def verify_answer(
    task: str, input_ids: Sequence[int], output_ids: Sequence[int], out_base: int
) -> Verdict:
    """Check an output without knowing the answer: a factorization is right when its factors
    are prime and multiply to the input (unique factorization does the rest). Only the tasks in
    VERIFIABLE can be verified; ValueError for the others."""
    if task not in VERIFIABLE:
        raise ValueError(
            f"answers of task {task!r} cannot be verified without the answer (verifiable: "
            f"{', '.join(VERIFIABLE)})"
        )
    answer = answer_tokens(output_ids)
    try:
        return _check_factorization(input_ids, answer, out_base)
    except (MalformedNumber, KeyError) as error:
        return _malformed(answer, error)


def check_answer(
    task: str,
    input_ids: Sequence[int],
    target_ids: Sequence[int],
    output_ids: Sequence[int],
    out_base: int,
) -> Verdict:
    """Check one output of a problem of `task` (ids may carry padding and `eos`)."""
    if task in VERIFIABLE:
        return verify_answer(task, input_ids, output_ids, out_base)
    answer = answer_tokens(output_ids)
    truth = answer_tokens(target_ids)
    try:
        if task in ("arithmetic", "base_convert"):
            value = decode_number(answer, out_base)
            expected = decode_number(truth, out_base)
            if value != expected:
                return Verdict(False, str(value), f"expected {expected}")
            return Verdict(True, str(value))
        text = " ".join(str(t) for t in answer)
        if answer != truth:
            return Verdict(False, text, f"expected {' '.join(str(t) for t in truth)}")
        return Verdict(True, text)
    except (MalformedNumber, KeyError) as error:
        return _malformed(answer, error)


def _malformed(answer: list[int], error: Exception) -> Verdict:
    shown = " ".join(TOKEN_NAMES.get(t, str(t)) for t in answer[:20])
    return Verdict(False, "", f"malformed output [{shown}]: {error}")


def check_batch(batch: dict[str, torch.Tensor], output_ids: torch.Tensor) -> list[Verdict]:
    """Check every row of a stream batch against the model's `output_ids` [n, width]."""
    verdicts = []
    for i in range(len(batch["task"])):
        input_ids = batch["input_ids"][i][batch["input_mask"][i]].tolist()
        target_ids = batch["target_ids"][i][batch["target_mask"][i]].tolist()
        verdicts.append(
            check_answer(
                TASKS[int(batch["task"][i])],
                input_ids,
                target_ids,
                output_ids[i].tolist(),
                int(batch["out_base"][i]),
            )
        )
    return verdicts
