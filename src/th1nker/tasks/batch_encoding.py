"""Vectorised encoding of whole batches of problems into padded token matrices.

A batch is built from *segments*: a segment is a pair `(tokens [n, w], lengths [n])` whose row i
holds `lengths[i]` valid tokens on the left, the rest padding. `concat_segments` joins segments row
by row without Python loops over rows, so the cost of a batch is a few numpy calls per segment.

Values may be int64 arrays or object arrays of Python ints (any size); digits are extracted in
int64 chunks either way. `th1nker.tasks.numbers` is the one-value reference for the same encoding
(and encodes the rows that hold fractions: decimal operands are rare enough to go row by row).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from jaxtyping import Bool, Int, Shaped, UInt64

from th1nker.tasks.numbers import MAX_BASE, MIN_BASE, encode_number
from th1nker.tasks.vocab import NEG, PAD

Tokens = Int[np.ndarray, "n _"]  # width varies from segment to segment
Lengths = Int[np.ndarray, " n"]
Segment = tuple[Tokens, Lengths]

_INT64_SAFE = 2**62


def _digits_per_chunk(base: int) -> int:
    """The largest k with base**k <= 2**62, so that a chunk of k digits fits an int64."""
    k = 1
    while base ** (k + 1) <= _INT64_SAFE:
        k += 1
    return k


CHUNK_DIGITS: Int[np.ndarray, " 257"] = np.array(
    [0, 0] + [_digits_per_chunk(b) for b in range(MIN_BASE, MAX_BASE + 1)], dtype=np.int64
)


def as_int64_if_fits(values: Shaped[np.ndarray, " n"]) -> Shaped[np.ndarray, " n"]:
    """An object array of Python ints as int64 when every value fits below 2**62 in size."""
    if values.dtype == object and (values.size == 0 or int(np.abs(values).max()) < _INT64_SAFE):
        return values.astype(np.int64)
    return values


def _digit_columns(
    magnitude: Int[np.ndarray, " n"], base: Int[np.ndarray, " n"], count: int | None
):
    """`count` least-significant-first digit columns of int64 magnitudes (None: until all zero)."""
    columns = []
    while count is None or len(columns) < count:
        columns.append(magnitude % base)
        magnitude = magnitude // base
        if count is None and not magnitude.any():
            break
    return columns


def int_digits(
    values: Shaped[np.ndarray, " n"], base: Int[np.ndarray, " n"]
) -> tuple[Tokens, Lengths]:
    """Digits of |values| in per-row bases, least significant first, padded with `pad`.

    Zero has the single digit 0. Returns (digits [n, w], lengths [n]) with w the longest row.
    """
    magnitude = as_int64_if_fits(np.abs(values))
    if magnitude.dtype == object:
        # Split into int64 chunks of k digits (k fits the largest base of the batch), then digits.
        k = int(CHUNK_DIGITS[base.max()])
        chunk_base = base.astype(object) ** k
        columns = []
        while magnitude.any():
            chunk = (magnitude % chunk_base).astype(np.int64)
            magnitude = magnitude // chunk_base
            columns += _digit_columns(chunk, base, k)
    else:
        columns = _digit_columns(magnitude.astype(np.int64), base, None)
    digits = np.stack(columns, axis=1)
    nonzero = digits != 0
    last_nonzero = digits.shape[1] - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    lengths = np.where(nonzero.any(axis=1), last_nonzero + 1, 1)
    digits[np.arange(digits.shape[1]) >= lengths[:, None]] = PAD
    return digits, lengths


def encode_ints(values: Shaped[np.ndarray, " n"], base: Int[np.ndarray, " n"]) -> Segment:
    """Integers as number tokens (`!` for negatives, digits least significant first)."""
    negative = np.asarray(values < 0, dtype=bool)
    digits, lengths = int_digits(values, base)
    if not negative.any():
        return digits, lengths
    return concat_segments([constant_segment([NEG], negative), (digits, lengths)])


def holds_fractions(values: Shaped[np.ndarray, "*shape"]) -> bool:
    """True when an object array holds a `Fraction` (decimal operands); int64 arrays never do.
    One C-level pass over the types: cheap enough for every batch."""
    return values.dtype == object and Fraction in set(map(type, values.flat))


def encode_values(values: Shaped[np.ndarray, " n"], base: Int[np.ndarray, " n"]) -> Segment:
    """Integers or terminating fractions (`Fraction`, object arrays) as number tokens."""
    if not holds_fractions(values):
        return encode_ints(values, base)
    rows = [encode_number(v, int(b)) for v, b in zip(values, base, strict=True)]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    tokens = np.full((len(rows), int(lengths.max())), PAD, dtype=np.int64)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = row
    return tokens, lengths


def constant_segment(tokens: list[int], present: Bool[np.ndarray, " n"]) -> Segment:
    """The same tokens in every row where `present`, an empty segment elsewhere."""
    matrix = np.broadcast_to(np.asarray(tokens, dtype=np.int64), (len(present), len(tokens)))
    return matrix, np.where(present, len(tokens), 0)


def concat_segments(segments: list[Segment]) -> Segment:
    """Join segments row by row: row i is segment 1's valid tokens, then segment 2's, ...

    Boolean indexing reads and writes in row-major order, so gathering the valid tokens of the
    side-by-side segments and writing them into the first `length` slots of each row keeps order.
    """
    stacked = np.concatenate([tokens for tokens, _ in segments], axis=1)
    valid = np.concatenate(
        [np.arange(tokens.shape[1]) < lengths[:, None] for tokens, lengths in segments], axis=1
    )
    lengths = valid.sum(axis=1)
    out = np.full((len(lengths), int(lengths.max(initial=0))), PAD, dtype=np.int64)
    out[np.arange(out.shape[1]) < lengths[:, None]] = stacked[valid]
    return out, lengths


def pad_to_width(tokens: Tokens, width: int) -> Tokens:
    """Right-pad a token matrix with `pad` to `width` columns."""
    extra = width - tokens.shape[1]
    return np.pad(tokens, ((0, 0), (0, extra)), constant_values=PAD) if extra > 0 else tokens


_FNV_OFFSET, _FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)


def row_hash(tokens: Tokens, lengths: Lengths) -> UInt64[np.ndarray, " n"]:
    """A 64-bit hash of each row's valid tokens (FNV-1a, then the splitmix64 finaliser).

    It depends only on the valid tokens, never on the padding width, so the same problem hashes
    the same in any batch. Splits are decided by it.
    """
    h = np.full(len(lengths), _FNV_OFFSET, dtype=np.uint64)
    for col in range(tokens.shape[1]):
        mixed = (h ^ tokens[:, col].astype(np.uint64)) * _FNV_PRIME
        h = np.where(col < lengths, mixed, h)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h
