"""Drawing problems for the tests as plain per-row records."""

from __future__ import annotations

from th1nker.tasks.scheme import TaskScheme, load_scheme
from th1nker.tasks.stream import ProblemStream


def scheme(**fields) -> TaskScheme:
    """A validated scheme from keyword fields over the defaults."""
    return TaskScheme.model_validate({**TaskScheme().model_dump(), **fields})


def records(task_scheme: TaskScheme | list[str], n: int, split="train", seed=0, batch_size=1000):
    """`n` problems as dicts: task, base, out_base, problem, answer, input_ids, target_ids, ..."""
    if isinstance(task_scheme, list):
        task_scheme = load_scheme(None, task_scheme)
    stream = ProblemStream(task_scheme, split, batch_size=min(n, batch_size), seed=seed)
    out, index = [], 0
    while len(out) < n:
        out += stream.batch(index).records(split)
        index += 1
    return out[:n]
