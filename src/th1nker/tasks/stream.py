"""Batches of problems from a scheme: mixing, bases, overflow, splits, and a PyTorch stream.

Batch i of split s under seed S is drawn from its own generator `default_rng([S, s, i])`, so it is
the same in every run and whichever DataLoader worker draws it. Splits never share a problem: a
problem belongs to train, val or test by a hash of its input tokens, and the ood split (harder
problems, from each generator's `ood` fields) keeps only problems outside the train share.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator

import numpy as np
import torch
from jaxtyping import Bool, Int

from th1nker.tasks.batch_encoding import pad_to_width, row_hash
from th1nker.tasks.generators import Encoded, Problems, decimal
from th1nker.tasks.numbers import MAX_BASE
from th1nker.tasks.sampling import geometric_weights
from th1nker.tasks.scheme import SPLITS, TASKS, SchemeError, TaskScheme
from th1nker.tasks.vocab import PAD, render_tokens

MAX_ROUNDS = 200


@dataclasses.dataclass(frozen=True)
class ProblemBatch:
    """One batch of encoded problems with what evaluation groups by.

    `parts` holds the problems of each generator with the batch rows they fill.
    """

    encoded: Encoded
    task: Int[np.ndarray, " n"]  # index into TASKS
    base: Int[np.ndarray, " n"]
    out_base: Int[np.ndarray, " n"]
    digits: Int[np.ndarray, " n"]
    operands: Int[np.ndarray, " n"]
    parts: list[tuple[Problems, Int[np.ndarray, " _"]]]

    def __len__(self) -> int:
        return len(self.task)

    def describe(self, fmt: Callable[[int, int], str]) -> list[tuple[str, str]]:
        """(problem, answer) text per row, in row order, numbers written by `fmt(value, base)`."""
        texts: list[tuple[str, str]] = [("", "")] * len(self)
        for problems, rows in self.parts:
            for row, text in zip(
                rows, problems.describe(fmt, self.base[rows], self.out_base[rows]), strict=True
            ):
                texts[row] = text
        return texts

    def groups(self) -> list[dict[str, str]]:
        """Per row, the extra labels its generator tabulates accuracy by (`Problems.groups`)."""
        labels: list[dict[str, str]] = [{} for _ in range(len(self))]
        for problems, rows in self.parts:
            for name, values in problems.groups().items():
                for row, value in zip(rows, values, strict=True):
                    labels[row][name] = value
        return labels

    def trace(self) -> list[list[list[int]]]:
        """Per row, the tokens of every state of its algorithm trace (in its output base, each
        ending with `eos`; the last is the target). See `Problems.trace`."""
        e = self.encoded
        traces = [[e.target_ids[i, : e.target_len[i]].tolist()] for i in range(len(self))]
        for problems, rows in self.parts:
            states = problems.trace(self.base[rows], self.out_base[rows])
            if states is None:  # no algorithm trace: the answer is the one state
                continue
            for row, row_states in zip(rows, states, strict=True):
                traces[row] = row_states
        return traces

    def describe_trace(self, fmt: Callable[[int, int], str]) -> list[list[str]]:
        """Per row, the text of every state of its trace, numbers written by `fmt`."""
        texts: list[list[str]] = [[] for _ in range(len(self))]
        for problems, rows in self.parts:
            for row, states in zip(
                rows,
                problems.describe_trace(fmt, self.base[rows], self.out_base[rows]),
                strict=True,
            ):
                texts[row] = states
        return texts

    def trace_tensors(self) -> dict[str, torch.Tensor]:
        """trace_ids [n, states, width] (pad-filled), trace_mask (same shape, bool) and
        trace_len [n] (states per row): the trace of every row as training targets."""
        traces = self.trace()
        states = max(len(t) for t in traces)
        width = max(len(state) for t in traces for state in t)
        ids = np.full((len(self), states, width), PAD, dtype=np.int64)
        for i, trace in enumerate(traces):
            for k, state in enumerate(trace):
                ids[i, k, : len(state)] = state
        return {
            "trace_ids": torch.from_numpy(ids),
            "trace_mask": torch.from_numpy(ids != PAD),
            "trace_len": torch.tensor([len(t) for t in traces], dtype=torch.long),
        }

    def records(self, split: str, trace: bool = False) -> list[dict]:
        """One plain dict per row (the `th1nker data --format jsonl` objects): task, split,
        base, out_base, problem and answer in plain decimal, digits, operands, input_ids and
        target_ids without padding; with `trace`, also `trace` (each state in plain decimal) and
        `trace_ids` (each state's tokens)."""
        texts, e = self.describe(decimal), self.encoded
        records = [
            {
                "task": TASKS[self.task[i]],
                "split": split,
                "base": int(self.base[i]),
                "out_base": int(self.out_base[i]),
                "problem": texts[i][0],
                "answer": texts[i][1],
                "digits": int(self.digits[i]),
                "operands": int(self.operands[i]),
                "input_ids": e.input_ids[i, : e.input_len[i]].tolist(),
                "target_ids": e.target_ids[i, : e.target_len[i]].tolist(),
            }
            for i in range(len(self))
        ]
        if trace:
            for record, states, ids in zip(
                records, self.describe_trace(decimal), self.trace(), strict=True
            ):
                record |= {"trace": states, "trace_ids": ids}
        return records

    def to_tensors(self, trace: bool = False) -> dict[str, torch.Tensor]:
        """input_ids/target_ids [n, width] (pad-filled) with boolean masks, and per-row fields;
        with `trace`, also the `trace_tensors`."""
        e = self.encoded
        columns = {"input": (e.input_ids, e.input_len), "target": (e.target_ids, e.target_len)}
        tensors = {}
        for name, (ids, lengths) in columns.items():
            tensors[f"{name}_ids"] = torch.from_numpy(ids)
            tensors[f"{name}_mask"] = torch.from_numpy(np.arange(ids.shape[1]) < lengths[:, None])
        for name in ("task", "base", "out_base", "digits", "operands"):
            tensors[name] = torch.from_numpy(np.asarray(getattr(self, name), dtype=np.int64))
        return tensors | (self.trace_tensors() if trace else {})


def merge_rows(n: int, pieces: list[tuple[Encoded, Int[np.ndarray, " _"]]]) -> Encoded:
    """One Encoded of `n` rows from pieces that each fill the given rows."""
    fields = {}
    for ids_name, len_name in (("input_ids", "input_len"), ("target_ids", "target_len")):
        lengths = np.zeros(n, dtype=np.int64)
        for encoded, rows in pieces:
            lengths[rows] = getattr(encoded, len_name)
        ids = np.full((n, int(lengths.max(initial=0))), PAD, dtype=np.int64)
        for encoded, rows in pieces:
            piece = getattr(encoded, ids_name)[:, : ids.shape[1]]
            ids[rows] = pad_to_width(piece, ids.shape[1])
        fields[ids_name], fields[len_name] = ids, lengths
    return Encoded(**fields)


class ProblemSource:
    """Draws encoded batches of one split of a scheme."""

    def __init__(self, scheme: TaskScheme, split: str = "train"):
        if split not in SPLITS:
            raise SchemeError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        self.scheme, self.split = scheme, split
        self.specs = [spec.for_split(split) for spec in scheme.generators]
        weights = np.array([spec.weight for spec in self.specs])
        self.weights = weights / weights.sum()
        self.base_values = np.array(scheme.bases.values)
        self.base_probs = geometric_weights(len(self.base_values), scheme.bases.distribution)
        self.larger_bases = np.sort(self.base_values)
        output = scheme.output_base
        self.out_values = None if output == "input" else np.array(output.values)
        if self.out_values is not None:
            self.out_probs = geometric_weights(len(self.out_values), output.distribution)

    def draw(self, rng: np.random.Generator, n: int) -> ProblemBatch:
        """`n` problems of this split, generators mixed by weight."""
        generator_of_row = rng.choice(len(self.specs), size=n, p=self.weights)
        pieces, parts, fields = [], [], {k: np.zeros(n, np.int64) for k in ("base", "out_base")}
        task, digits, operands = (np.zeros(n, np.int64) for _ in range(3))
        for g, spec in enumerate(self.specs):
            rows = np.flatnonzero(generator_of_row == g)
            if len(rows) == 0:
                continue
            problems, base, out_base, encoded = self._draw_split_rows(rng, spec, len(rows))
            pieces.append((encoded, rows))
            parts.append((problems, rows))
            fields["base"][rows], fields["out_base"][rows] = base, out_base
            task[rows] = TASKS.index(spec.type)
            digits[rows], operands[rows] = problems.difficulty()
        return ProblemBatch(
            merge_rows(n, pieces), task, digits=digits, operands=operands, parts=parts, **fields
        )

    def _draw_split_rows(self, rng, spec, k: int):
        """`k` problems of one generator that belong to this split (drawn in rounds)."""
        keep_share = self._split_share()
        found: list[tuple[Problems, np.ndarray, np.ndarray, Encoded]] = []
        have = 0
        for _ in range(MAX_ROUNDS):
            m = int(np.ceil((k - have) / keep_share * 1.1)) + 8
            problems = spec.draw(rng, m)
            base, out_base = self._draw_bases(rng, problems, spec)
            encoded = self._fit(problems, base, out_base)
            keep = np.flatnonzero(self._in_split(encoded))
            if len(keep):
                kept = _take_encoded(encoded, keep)
                found.append((problems.take(keep), base[keep], out_base[keep], kept))
                have += len(keep)
            if have >= k:
                break
        else:
            raise SchemeError(
                f"split {self.split!r} of generator {spec.type!r} found {have} of {k} problems in "
                f"{MAX_ROUNDS} rounds: its problem space is too small for the split fractions"
            )
        first_k = np.arange(k)
        problems = found[0][0].concat([p for p, *_ in found]).take(first_k)
        base = np.concatenate([b for _, b, _, _ in found])[first_k]
        out_base = np.concatenate([o for _, _, o, _ in found])[first_k]
        encoded = _concat_encoded([e for *_, e in found])
        return problems, base, out_base, _take_encoded(encoded, first_k)

    def _split_share(self) -> float:
        val, test = self.scheme.splits.val, self.scheme.splits.test
        return {"train": 1 - val - test, "val": val, "test": test, "ood": val + test}[self.split]

    def _in_split(self, encoded: Encoded) -> Bool[np.ndarray, " n"]:
        """Which rows belong to this split, by the hash of their input tokens."""
        position = (row_hash(encoded.input_ids, encoded.input_len) >> np.uint64(11)) / 2.0**53
        val, test = self.scheme.splits.val, self.scheme.splits.test
        if self.split == "train":
            return position >= val + test
        if self.split == "val":
            return position < val
        if self.split == "test":
            return (position >= val) & (position < val + test)
        return position < val + test

    def _draw_bases(self, rng, problems: Problems, spec):
        n = len(problems)
        if not problems.numeric:
            full = np.full(n, MAX_BASE)
            return full, full.copy()
        base = rng.choice(self.base_values, size=n, p=self.base_probs)
        if self.out_values is None:
            out_base = base.copy()
        else:
            out_base = rng.choice(self.out_values, size=n, p=self.out_probs)
        allowed = getattr(spec, "to_bases", None) or self.scheme.bases.values
        return base, problems.choose_out_base(rng, base, out_base, sorted(allowed))

    def _fit(self, problems: Problems, base, out_base) -> Encoded:
        """Encode; re-encode rows longer than max_length in the next larger base, or refuse them.

        Modifies `base` (and `out_base` where it follows the input base) in place.
        """
        max_length = self.scheme.max_length
        encoded = problems.encode(base, out_base)
        while True:
            too_long = np.flatnonzero(
                (encoded.input_len > max_length) | (encoded.target_len > max_length)
            )
            if len(too_long) == 0:
                return encoded
            index = np.searchsorted(self.larger_bases, base[too_long], side="right")
            stuck = too_long[index >= len(self.larger_bases)]
            refuse = self.scheme.overflow_strategy == "error" or not problems.numeric
            if refuse or len(stuck):
                row = too_long[0] if refuse else stuck[0]
                text, _ = problems.take(np.array([row])).describe(
                    lambda v, b: str(v), base[[row]], out_base[[row]]
                )[0]
                tokens = encoded.input_ids[row, : encoded.input_len[row]].tolist()
                raise SchemeError(
                    f"problem {text} in base {base[row]} needs {encoded.input_len[row]} input and "
                    f"{encoded.target_len[row]} target tokens, more than max_length {max_length} "
                    f"(overflow_strategy: {self.scheme.overflow_strategy}; largest base "
                    f"{self.larger_bases[-1]}); input: {render_tokens(tokens[:40])}"
                )
            follows = (out_base[too_long] == base[too_long]) & (self.out_values is None)
            base[too_long] = self.larger_bases[index]
            out_base[too_long] = np.where(follows, base[too_long], out_base[too_long])
            again = problems.take(too_long).encode(base[too_long], out_base[too_long])
            fine = np.setdiff1d(np.arange(len(problems)), too_long)
            encoded = merge_rows(
                len(problems), [(_take_encoded(encoded, fine), fine), (again, too_long)]
            )


def _concat_encoded(parts: list[Encoded]) -> Encoded:
    """The rows of several Encoded one after another (padded to the widest)."""
    in_width = max(e.input_ids.shape[1] for e in parts)
    out_width = max(e.target_ids.shape[1] for e in parts)
    return Encoded(
        np.concatenate([pad_to_width(e.input_ids, in_width) for e in parts]),
        np.concatenate([e.input_len for e in parts]),
        np.concatenate([pad_to_width(e.target_ids, out_width) for e in parts]),
        np.concatenate([e.target_len for e in parts]),
    )


def _take_encoded(encoded: Encoded, rows) -> Encoded:
    return Encoded(
        encoded.input_ids[rows],
        encoded.input_len[rows],
        encoded.target_ids[rows],
        encoded.target_len[rows],
    )


class ProblemStream(torch.utils.data.IterableDataset):
    """Endless (or `num_batches`-long) stream of tensor batches from one split of a scheme.

    Use with `DataLoader(stream, batch_size=None)`; with several workers, worker w draws batches
    w, w+W, ... and the loader interleaves them back in order, so the stream is the same for any
    number of workers.
    """

    def __init__(
        self,
        scheme: TaskScheme,
        split: str = "train",
        batch_size: int = 256,
        seed: int = 0,
        num_batches: int | None = None,
        start: int = 0,
        trace: bool = False,
    ):
        super().__init__()
        self.trace = trace  # batches carry the algorithm traces (`ProblemBatch.trace_tensors`)
        if batch_size < 1 or seed < 0:
            raise ValueError(f"batch_size must be >= 1 and seed >= 0, got {batch_size}, {seed}")
        self.source = ProblemSource(scheme, split)
        self.split_id = SPLITS.index(split)
        self.batch_size, self.seed, self.num_batches = batch_size, seed, num_batches
        self.start = start  # index of the first batch (a resumed run continues where it stopped)

    def batch(self, index: int) -> ProblemBatch:
        """Batch number `index` of this stream (the same in every run)."""
        rng = np.random.default_rng([self.seed, self.split_id, index])
        return self.source.draw(rng, self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = torch.utils.data.get_worker_info()
        first, step = (0, 1) if worker is None else (worker.id, worker.num_workers)
        indices = itertools.count(self.start + first, step)
        if self.num_batches is not None:
            indices = range(self.start + first, self.num_batches, step)
        for index in indices:
            yield self.batch(index).to_tensors(self.trace)


def make_loader(
    scheme: TaskScheme,
    split: str = "train",
    batch_size: int = 256,
    seed: int = 0,
    num_workers: int = 0,
    num_batches: int | None = None,
    start: int = 0,
    trace: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader over `ProblemStream` (batches are made whole by the stream; with `trace`
    they carry the algorithm traces)."""
    stream = ProblemStream(scheme, split, batch_size, seed, num_batches, start, trace)
    return torch.utils.data.DataLoader(
        stream,
        batch_size=None,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        # its own generator: starting the loader must not draw from torch's global RNG, or a
        # resumed run would see different random numbers than the uninterrupted one
        generator=torch.Generator().manual_seed(seed),
    )
