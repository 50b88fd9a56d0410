"""Multi-query associative recall (MQAR; Arora et al. 2023, the Zoology benchmark).

A problem is P key/value pairs with distinct keys, then Q of the keys asked again (distinct, in
random order); the answer is each asked key's value:

    task:recall k1 v1 k2 v2 .. kP vP = q1 .. qQ   ->   v(q1) .. v(qQ) eos

Keys are symbols 0..2^(bits-1)-1 and values 2^(bits-1)..2^bits-1 (disjoint halves, as in Zoology),
one digit token each. Unlike `recall` (whose items are separated by `blank`), the pairs follow
one another directly. Recall over P pairs needs a memory that holds P associations: a model that
sees only the last W tokens cannot answer a query about a pair more than W tokens back.

`MQARProblems.sequences()` gives the same problems as Zoology's causal stream
`k1 v1 .. kP vP q1 a1 .. qQ aQ` with the positions where the next token is an answer, for
sequence models trained by next-token prediction (benchmarks/bench_mqar.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Bool, Int

from th1nker.tasks.batch_encoding import concat_segments, constant_segment
from th1nker.tasks.generators.base import Encoded, Formatter, Problems
from th1nker.tasks.vocab import EOS, EQUALS, PAD, TASK_RECALL


@dataclasses.dataclass(frozen=True)
class MQARProblems(Problems):
    """keys, values [n, P] (pad beyond n_pairs), n_pairs [n], asked [n, Q] (pair indices; pad
    beyond n_queries), n_queries [n]."""

    task = "mqar"
    numeric = False
    keys: Int[np.ndarray, "n pairs"]
    values: Int[np.ndarray, "n pairs"]
    n_pairs: Int[np.ndarray, " n"]
    asked: Int[np.ndarray, "n queries"]
    n_queries: Int[np.ndarray, " n"]

    def difficulty(self):
        return self.n_pairs, self.n_queries

    def _asked(self, of: Int[np.ndarray, "n pairs"]) -> Int[np.ndarray, "n queries"]:
        """`of` (keys or values) at the asked pairs, pad beyond each row's queries."""
        rows = np.arange(len(self))[:, None]
        valid = np.arange(self.asked.shape[1]) < self.n_queries[:, None]
        return np.where(valid, of[rows, np.where(valid, self.asked, 0)], PAD)

    def pairs(self) -> Int[np.ndarray, "n twice_pairs"]:
        """k1 v1 k2 v2 ... per row (pad beyond 2 * n_pairs)."""
        return np.stack((self.keys, self.values), axis=2).reshape(len(self), -1)

    def encode(self, base, out_base) -> Encoded:
        everywhere = np.ones(len(self), dtype=bool)
        inputs = concat_segments(
            [
                constant_segment([TASK_RECALL], everywhere),
                (self.pairs(), 2 * self.n_pairs),
                constant_segment([EQUALS], everywhere),
                (self._asked(self.keys), self.n_queries),
            ]
        )
        target = concat_segments(
            [(self._asked(self.values), self.n_queries), constant_segment([EOS], everywhere)]
        )
        return Encoded(*inputs, *target)

    def sequences(self) -> tuple[Int[np.ndarray, "n time"], Bool[np.ndarray, "n time"]]:
        """Zoology's causal stream `k1 v1 .. kP vP q1 a1 .. qQ aQ` (pad after each row's end)
        and `answers`: True at each q_i, whose next token a_i is to be predicted."""
        asked = np.stack((self._asked(self.keys), self._asked(self.values)), axis=2)
        tokens, lengths = concat_segments(
            [(self.pairs(), 2 * self.n_pairs), (asked.reshape(len(self), -1), 2 * self.n_queries)]
        )
        time = np.arange(tokens.shape[1])
        start = 2 * self.n_pairs[:, None]
        answers = (time >= start) & ((time - start) % 2 == 0) & (time < lengths[:, None])
        return tokens, answers

    def describe(self, fmt: Formatter, base, out_base):
        keys, values = self._asked(self.keys), self._asked(self.values)
        texts = []
        for i in range(len(self)):
            pairs = self.pairs()[i, : 2 * self.n_pairs[i]].reshape(-1, 2)
            problem = " ".join(f"{k}:{v}" for k, v in pairs)
            asked = " ".join(str(k) for k in keys[i, : self.n_queries[i]])
            texts.append(
                (f"{problem} ? {asked}", " ".join(map(str, values[i, : self.n_queries[i]])))
            )
        return texts


def sample_mqar(rng, n, pairs: tuple[int, int], queries: int, bits: int) -> MQARProblems:
    """`n` problems of a uniform pair count in `pairs`, each asking min(queries, pairs) keys."""
    half = 2 ** (bits - 1)
    if pairs[1] > half:
        raise ValueError(f"pairs {list(pairs)}: at most {half} distinct keys with bits {bits}")
    n_pairs = rng.integers(pairs[0], pairs[1], size=n, endpoint=True)
    width = pairs[1]
    active = np.arange(width) < n_pairs[:, None]
    keys = np.argsort(rng.random((n, half)), axis=1)[:, :width]  # distinct per row
    values = half + rng.integers(0, half, size=(n, width))
    keys, values = np.where(active, keys, PAD), np.where(active, values, PAD)
    n_queries = np.minimum(queries, n_pairs)
    order = np.argsort(np.where(active, rng.random((n, width)), np.inf), axis=1)
    asked = order[:, : min(queries, width)]
    asked = np.where(np.arange(asked.shape[1]) < n_queries[:, None], asked, PAD)
    return MQARProblems(keys, values, n_pairs, asked, n_queries)
