"""Exact-match evaluation: decode answers greedily, check them exactly, tabulate by group.

Answers are checked by the task language's checker (by value for numbers, by primality and product
for factorizations), not by comparing tokens, so any correct way of writing an answer counts.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable

import torch

from th1nker.models.family import Family
from th1nker.tasks.checking import check_batch
from th1nker.tasks.scheme import TASKS, TaskScheme
from th1nker.tasks.stream import ProblemStream

GROUPS = ("task", "base", "digits", "operands")


@dataclasses.dataclass
class EvalResult:
    """Accuracy overall and per group value: by[group][value] = (correct, total); the mean
    thinking steps used, overall and per group value (steps_by[group][value])."""

    split: str
    correct: int
    total: int
    mean_steps: float
    by: dict[str, dict[str, tuple[int, int]]]
    steps_by: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "accuracy": self.accuracy,
            "correct": self.correct,
            "total": self.total,
            "mean_steps": self.mean_steps,
            "by": {
                group: {
                    value: {
                        "accuracy": c / t,
                        "correct": c,
                        "total": t,
                        "mean_steps": self.steps_by.get(group, {}).get(value),
                    }
                    for value, (c, t) in table.items()
                }
                for group, table in self.by.items()
            },
        }


def _sorted_values(values: list[str]) -> list[str]:
    """Numbers in numeric order, then names in alphabetical order."""
    return sorted(values, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


@torch.no_grad()
def evaluate(
    model: Family,
    scheme: TaskScheme,
    split: str,
    examples: int,
    batch_size: int,
    seed: int,
    fixed_steps: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Accuracy of `model` on `examples` problems of `split` (the same problems for every seed).

    Each problem thinks for `model.steps_for(batch)` steps, or `fixed_steps` if given
    (a halting head may stop a problem sooner, except with `fixed_steps`); `mean_steps` is the
    mean of the steps used. `progress(done)`, if given, is called after every batch with the
    number of problems evaluated so far.
    """
    device = model.device
    was_training = model.training
    model.eval()
    stream = ProblemStream(scheme, split, batch_size, seed)
    counts: dict[str, dict[str, list[int]]] = {g: defaultdict(lambda: [0, 0, 0]) for g in GROUPS}
    correct = total = steps_sum = 0
    for index in range((examples + batch_size - 1) // batch_size):
        batch = stream.batch(index).to_tensors(trace=model.needs_trace)
        batch = {k: v[: examples - total] for k, v in batch.items()}
        steps = model.steps_for(batch)
        if fixed_steps is not None:
            steps = torch.full_like(steps, fixed_steps)
        out = model.generate(
            batch["input_ids"].to(device),
            batch["input_mask"].to(device),
            steps.to(device),
            max_answer=batch["target_ids"].shape[1] + 2,
            use_halting=fixed_steps is None,
        )
        answers = out.answers[0].cpu()
        verdicts = check_batch(batch, answers)
        for i, verdict in enumerate(verdicts):
            values = {
                "task": TASKS[int(batch["task"][i])],
                "base": str(int(batch["base"][i])),
                "digits": str(int(batch["digits"][i])),
                "operands": str(int(batch["operands"][i])),
            }
            for group, value in values.items():
                counts[group][value][0] += verdict.correct
                counts[group][value][1] += 1
                counts[group][value][2] += int(out.steps[i])
            correct += verdict.correct
        total += len(verdicts)
        steps_sum += int(out.steps.sum())
        if progress is not None:
            progress(total)
    model.train(was_training)
    by = {
        group: {v: (table[v][0], table[v][1]) for v in _sorted_values(list(table))}
        for group, table in counts.items()
    }
    steps_by = {
        group: {v: table[v][2] / table[v][1] for v in _sorted_values(list(table))}
        for group, table in counts.items()
    }
    return EvalResult(split, correct, total, steps_sum / max(total, 1), by, steps_by)
