"""What every problem generator provides.

A generator draws *problems* (values, operators, ...) as arrays, independently of how they are
written; `encode` then writes them as tokens in per-row bases. Keeping the two apart lets the
stream re-encode a problem that does not fit `max_length` in a larger base without drawing it
again, and lets `describe` show the same problem in plain decimal.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from fractions import Fraction
from typing import ClassVar, no_type_check

import numpy as np
from jaxtyping import Int

from th1nker.tasks.batch_encoding import Segment, concat_segments, constant_segment, encode_values
from th1nker.tasks.numbers import format_in_base
from th1nker.tasks.vocab import BASE, EOS, N_DIGITS, OUTPUT_BASE

Formatter = Callable[[int | Fraction, int], str]  # (value, base) -> text


@dataclasses.dataclass(frozen=True)
class Encoded:
    """Token matrices of one batch of problems; row i is valid up to its length."""

    input_ids: Int[np.ndarray, "n in_width"]
    input_len: Int[np.ndarray, " n"]
    target_ids: Int[np.ndarray, "n out_width"]
    target_len: Int[np.ndarray, " n"]


@dataclasses.dataclass(frozen=True)
class Problems(abc.ABC):
    """A batch of problems of one generator: dataclass fields are arrays with one row each.

    Subclasses add their fields and implement `encode` and `describe`; `take` and `__len__` work
    for all of them.
    """

    task: ClassVar[str]
    numeric: ClassVar[bool] = True  # False: written in raw tokens, bases do not apply

    def __len__(self) -> int:
        return len(getattr(self, dataclasses.fields(self)[0].name))

    def take(self, rows: Int[np.ndarray, " k"]) -> Problems:
        """The problems of the given rows, in that order."""
        return dataclasses.replace(
            self, **{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)}
        )

    def concat(self, batches: list[Problems]) -> Problems:
        """The rows of `batches` (all drawn by the same generator settings), one after another."""
        return dataclasses.replace(
            self,
            **{
                f.name: np.concatenate([getattr(b, f.name) for b in batches], axis=0)
                for f in dataclasses.fields(self)
            },
        )

    @abc.abstractmethod
    def difficulty(self) -> tuple[Int[np.ndarray, " n"], Int[np.ndarray, " n"]]:
        """(digits, operands) per row: decimal digits of the largest operand and operand count."""

    @abc.abstractmethod
    def encode(self, base: Int[np.ndarray, " n"], out_base: Int[np.ndarray, " n"]) -> Encoded:
        """Tokens of the inputs (numbers in `base`) and targets (numbers in `out_base`)."""

    @abc.abstractmethod
    def describe(
        self, fmt: Formatter, base: Int[np.ndarray, " n"], out_base
    ) -> list[tuple[str, str]]:
        """(problem, answer) text per row, numbers written by `fmt(value, base)`."""

    def groups(self) -> dict[str, list[str]]:
        """Extra per-row labels that evaluation tabulates accuracy by (beyond task, base,
        digits and operands), e.g. a factorization's smallest prime factor; none by default."""
        return {}

    def choose_out_base(self, rng, base, out_base, allowed_bases):
        """The output base per row; the scheme's choice unless the task decides it."""
        return out_base

    def trace(
        self, base: Int[np.ndarray, " n"], out_base: Int[np.ndarray, " n"]
    ) -> list[list[list[int]]] | None:
        """Per row, the states an exact algorithm passes through, as tokens in `out_base`, each
        ending with `eos`; the last state is the answer (the target). None: this generator has
        no algorithm trace (its answer is its one state)."""
        return None

    def describe_trace(self, fmt: Formatter, base, out_base) -> list[list[str]]:
        """Per row, the text of each state of `trace` (numbers written by `fmt(value, base)`);
        without a trace, the answer."""
        return [[answer] for _, answer in self.describe(fmt, base, out_base)]


@no_type_check
def decimal(value: int | Fraction, base: int) -> str:
    """The `Formatter` for plain decimal text (a fraction with its decimal digits: -1.25)."""
    return format_in_base(value, 10) if isinstance(value, Fraction) else str(value)


def base_segment(base: Int[np.ndarray, " n"], present=None) -> Segment:
    """`@ b` per row (digit token 0 stands for base 256)."""
    n = len(base)
    present = np.ones(n, dtype=bool) if present is None else present
    tokens = np.stack([np.full(n, BASE), base % N_DIGITS], axis=1)
    return tokens, np.where(present, 2, 0)


def output_base_suffix(base, out_base) -> list[Segment]:
    """`output:base @ b'` in the rows whose output base differs from their input base."""
    differs = base != out_base
    return [constant_segment([OUTPUT_BASE], differs), base_segment(out_base, differs)]


def number_target(values, out_base) -> Segment:
    """The target segment of a numeric answer: the number in `out_base`, then `eos`."""
    number = encode_values(values, out_base)
    return concat_segments([number, constant_segment([EOS], np.ones(len(values), dtype=bool))])
