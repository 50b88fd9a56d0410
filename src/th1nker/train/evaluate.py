"""Exact-match evaluation: decode answers greedily, check them exactly, tabulate by group.

Answers are checked by the task language's checker (by value for numbers, by primality and product
for factorizations), not by comparing tokens, so any correct way of writing an answer counts.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Callable

import torch

from th1nker.models.family import Family
from th1nker.search import check_verifiable, verified_search
from th1nker.tasks.checking import check_batch
from th1nker.tasks.scheme import TASKS, TaskScheme
from th1nker.tasks.stream import ProblemStream


@dataclasses.dataclass
class EvalResult:
    """Greedy accuracy overall and per group value: by[group][value] = (correct, total); the
    mean thinking steps used, overall and per group value (steps_by[group][value]). With
    verified search (`candidates` > 1): `verified` problems had a verified answer among their
    candidates, per group value in verified_by[group][value] (th1nker.search)."""

    split: str
    correct: int
    total: int
    mean_steps: float
    by: dict[str, dict[str, tuple[int, int]]]
    steps_by: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    candidates: int = 1
    verified: int = 0
    verified_by: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)

    @property
    def verified_accuracy(self) -> float:
        """verified@k: the share of problems with a verified answer among k candidates."""
        return self.verified / max(self.total, 1)

    def to_json(self) -> dict:
        out = {
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
                    | ({"verified": self.verified_by[group][value]} if self.candidates > 1 else {})
                    for value, (c, t) in table.items()
                }
                for group, table in self.by.items()
            },
        }
        if self.candidates > 1:
            out |= {
                "candidates": self.candidates,
                "verified": self.verified,
                "verified_accuracy": self.verified_accuracy,
            }
        return out


def _sorted_values(values: list[str]) -> list[str]:
    """By the numbers they hold (`3`, `4-7`, `16-31`, `10->2`, `10->16` in numeric order), then
    names alphabetically."""

    def key(value: str):
        numbers = [int(n) for n in re.findall(r"\d+", value)]
        return (not numbers, numbers, value)

    return sorted(values, key=key)


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
    candidates: int = 1,
    temperature: float = 1.0,
) -> EvalResult:
    """Accuracy of `model` on `examples` problems of `split` (the same problems for every seed).

    Each problem thinks for `model.steps_for(batch)` steps, or `fixed_steps` if given
    (a halting head may stop a problem sooner, except with `fixed_steps`); `mean_steps` is the
    mean of the steps used. With `candidates` > 1, verified search (th1nker.search) also counts
    the problems with a verified answer among that many candidates (samples at `temperature`).
    Groups: task, base, digits, operands, conversion (`10->2`, rows whose output base differs
    from their input base), and what the generators add (`Problems.groups`).
    `progress(done)`, if given, is called after every batch with the number of problems
    evaluated so far.
    """
    device = model.device
    was_training = model.training
    model.eval()
    batch_size = min(batch_size, examples)  # drawing (and splitting) more would be thrown away
    stream = ProblemStream(scheme, split, batch_size, seed)
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0] * 4))
    correct = total = steps_sum = verified = 0
    for index in range((examples + batch_size - 1) // batch_size):
        problems = stream.batch(index)
        batch = problems.to_tensors(trace=model.needs_trace)
        batch = {k: v[: examples - total] for k, v in batch.items()}
        if candidates > 1:
            check_verifiable(batch)
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
        found = torch.zeros(len(verdicts), dtype=torch.bool)
        if candidates > 1:
            found = verified_search(
                model, batch, answers, candidates, temperature, seed=seed * 100_003 + index
            ).verified
        extra = problems.groups()[: len(verdicts)]
        for i, (verdict, labels) in enumerate(zip(verdicts, extra, strict=True)):
            values = {
                "task": TASKS[int(batch["task"][i])],
                "base": str(int(batch["base"][i])),
                "digits": str(int(batch["digits"][i])),
                "operands": str(int(batch["operands"][i])),
                **labels,
            }
            if int(batch["out_base"][i]) != int(batch["base"][i]):
                values["conversion"] = f"{values['base']}->{int(batch['out_base'][i])}"

            for group, value in values.items():
                cell = counts[group][value]
                cell[0] += verdict.correct
                cell[1] += 1
                cell[2] += int(out.steps[i])
                cell[3] += int(found[i])
            correct += verdict.correct
        total += len(verdicts)
        steps_sum += int(out.steps.sum())
        verified += int(found.sum())
        if progress is not None:
            progress(total)
    model.train(was_training)
    order = {group: _sorted_values(list(table)) for group, table in counts.items()}
    by = {g: {v: (counts[g][v][0], counts[g][v][1]) for v in order[g]} for g in order}
    steps_by = {g: {v: counts[g][v][2] / counts[g][v][1] for v in order[g]} for g in order}
    verified_by = {g: {v: counts[g][v][3] for v in order[g]} for g in order}
    return EvalResult(
        split, correct, total, steps_sum / max(total, 1), by, steps_by,
        candidates, verified, verified_by,
    )  # fmt: skip
