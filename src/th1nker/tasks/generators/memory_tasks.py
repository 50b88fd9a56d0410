"""The classic memory tasks: copy, reverse and associative recall of random 8-bit tokens.

Each symbol is one digit token 0..2**bits-1 (an 8-bit vector for bits=8), so these tasks need no
base. Formats (docs/task-language.md):

- copy:    `task:copy s1 .. sL =`        -> `s1 .. sL eos`
- reverse: `task:reverse s1 .. sL =`     -> `sL .. s1 eos`
- recall:  `task:recall i1 blank i2 blank .. iK = q` -> the item after the first occurrence of
  the query item q (q is one of i1..i(K-1)), then `eos`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from jaxtyping import Int

from th1nker.tasks.batch_encoding import concat_segments, constant_segment
from th1nker.tasks.generators.base import Encoded, Formatter, Problems
from th1nker.tasks.vocab import BLANK, EOS, EQUALS, PAD, TASK_COPY, TASK_RECALL, TASK_REVERSE


def _symbols_text(symbols: Int[np.ndarray, " k"]) -> str:
    return " ".join(str(int(s)) for s in symbols)


@dataclasses.dataclass(frozen=True)
class CopyProblems(Problems):
    """sequence [n, L] (pad beyond each row's length), length [n]."""

    task = "copy"
    numeric = False
    marker: ClassVar[int] = TASK_COPY
    sequence: Int[np.ndarray, "n width"]
    length: Int[np.ndarray, " n"]

    def difficulty(self):
        return self.length, np.ones(len(self), dtype=np.int64)

    def answer(self) -> Int[np.ndarray, "n width"]:
        return self.sequence

    def encode(self, base, out_base) -> Encoded:
        everywhere = np.ones(len(self), dtype=bool)
        inputs = concat_segments(
            [
                constant_segment([self.marker], everywhere),
                (self.sequence, self.length),
                constant_segment([EQUALS], everywhere),
            ]
        )
        target = concat_segments(
            [(self.answer(), self.length), constant_segment([EOS], everywhere)]
        )
        return Encoded(*inputs, *target)

    def describe(self, fmt: Formatter, base, out_base):
        answer = self.answer()
        return [
            (_symbols_text(self.sequence[i, :k]), _symbols_text(answer[i, :k]))
            for i, k in enumerate(self.length)
        ]


@dataclasses.dataclass(frozen=True)
class ReverseProblems(CopyProblems):
    """As copy, with the target reversed."""

    task = "reverse"
    marker: ClassVar[int] = TASK_REVERSE

    def answer(self):
        width = self.sequence.shape[1]
        source = self.length[:, None] - 1 - np.arange(width)
        rows = np.arange(len(self))[:, None]
        return np.where(source >= 0, self.sequence[rows, np.maximum(source, 0)], PAD)


def sample_sequences(rng, n, length: tuple[int, int], bits: int, reverse: bool) -> CopyProblems:
    """`n` random symbol sequences with a uniform length in `length`."""
    lengths = rng.integers(length[0], length[1], size=n, endpoint=True)
    symbols = rng.integers(0, 2**bits, size=(n, length[1]))
    symbols[np.arange(length[1]) >= lengths[:, None]] = PAD
    return (ReverseProblems if reverse else CopyProblems)(symbols, lengths)


@dataclasses.dataclass(frozen=True)
class RecallProblems(Problems):
    """items [n, K, item_len] (pad in unused items), n_items [n], query [n] (an item index)."""

    task = "recall"
    numeric = False
    items: Int[np.ndarray, "n max_items item_len"]
    n_items: Int[np.ndarray, " n"]
    query: Int[np.ndarray, " n"]

    def difficulty(self):
        return self.n_items, self.n_items

    def answer_index(self) -> Int[np.ndarray, " n"]:
        """Index of the item after the first item equal to the query item."""
        rows = np.arange(len(self))
        query_item = self.items[rows, self.query]
        equal = (self.items == query_item[:, None, :]).all(axis=2)
        return np.argmax(equal, axis=1) + 1

    def encode(self, base, out_base) -> Encoded:
        n, max_items, item_len = self.items.shape
        everywhere = np.ones(n, dtype=bool)
        full = np.full(n, item_len)
        segments = [constant_segment([TASK_RECALL], everywhere)]
        for k in range(max_items):
            active = k < self.n_items
            if k > 0:
                segments.append(constant_segment([BLANK], active))
            segments.append((self.items[:, k], np.where(active, item_len, 0)))
        rows = np.arange(n)
        segments += [constant_segment([EQUALS], everywhere), (self.items[rows, self.query], full)]
        answer = self.items[rows, self.answer_index()]
        target = concat_segments([(answer, full), constant_segment([EOS], everywhere)])
        return Encoded(*concat_segments(segments), *target)

    def describe(self, fmt: Formatter, base, out_base):
        answer = self.answer_index()
        texts = []
        for i in range(len(self)):
            items = [_symbols_text(item) for item in self.items[i, : self.n_items[i]]]
            problem = " | ".join(items) + " ? " + items[self.query[i]]
            texts.append((problem, items[answer[i]]))
        return texts


def sample_recall(rng, n, items: tuple[int, int], item_len: int, bits: int) -> RecallProblems:
    """`n` recall problems with a uniform item count in `items` (at least 2)."""
    n_items = rng.integers(items[0], items[1], size=n, endpoint=True)
    symbols = rng.integers(0, 2**bits, size=(n, items[1], item_len))
    symbols[np.arange(items[1]) >= n_items[:, None]] = PAD
    query = (rng.random(n) * (n_items - 1)).astype(np.int64)
    return RecallProblems(symbols, n_items, query)
