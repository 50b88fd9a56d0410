"""Drawing problems for the tests as plain per-row records."""

from __future__ import annotations

from th1nker.tasks.generators import decimal
from th1nker.tasks.scheme import TASKS, TaskScheme, load_scheme
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
        batch = stream.batch(index)
        index += 1
        texts, e = batch.describe(decimal), batch.encoded
        for i in range(len(batch)):
            out.append(
                {
                    "task": TASKS[batch.task[i]],
                    "base": int(batch.base[i]),
                    "out_base": int(batch.out_base[i]),
                    "problem": texts[i][0],
                    "answer": texts[i][1],
                    "digits": int(batch.digits[i]),
                    "operands": int(batch.operands[i]),
                    "input_ids": e.input_ids[i, : e.input_len[i]].tolist(),
                    "target_ids": e.target_ids[i, : e.target_len[i]].tolist(),
                }
            )
    return out[:n]
