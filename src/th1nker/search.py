"""Verified search: the greedy answer first, then sampled candidates; the first that verifies wins.

    searched = verified_search(model, batch, greedy, candidates=16, temperature=1.0, seed=0)

Only answers that can be checked from the problem alone take part (`checking.VERIFIABLE`: a
factorization is verified by primality and product). Candidate 0 is the greedy answer; the others
are drawn by `model.sample`, each only for the rows that no earlier candidate verified. A row
counts as verified only if one of its candidates passed `verify_answer`; otherwise its answer
stays the greedy one, unverified. Greedy top-1 and verified@k are reported apart, never mixed.
"""

from __future__ import annotations

import dataclasses

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from th1nker.models.family import Batch, Family
from th1nker.tasks.checking import VERIFIABLE, Verdict, verify_answer
from th1nker.tasks.scheme import TASKS
from th1nker.tasks.vocab import PAD


@dataclasses.dataclass
class Searched:
    """answers [batch, answer]: the first verified candidate (else the greedy answer);
    verified [batch]; candidate [batch]: which candidate was returned (0: greedy; -1: none
    verified); tried [batch]: candidates drawn for the row, greedy included."""

    answers: Int[Tensor, "batch answer"]
    verified: Bool[Tensor, " batch"]
    candidate: Int[Tensor, " batch"]
    tried: Int[Tensor, " batch"]


def check_verifiable(batch: Batch) -> None:
    """ValueError naming the first task of `batch` whose answers cannot be verified."""
    for task in {TASKS[int(t)] for t in batch["task"]}:
        if task not in VERIFIABLE:
            raise ValueError(
                f"verified search needs answers that can be checked from the problem alone; "
                f"task {task!r} has no verifier (verifiable: {', '.join(VERIFIABLE)})"
            )


def _verify_rows(batch: Batch, rows: list[int], answers: Tensor) -> list[Verdict]:
    return [
        verify_answer(
            TASKS[int(batch["task"][i])],
            batch["input_ids"][i][batch["input_mask"][i]].tolist(),
            answers[j].tolist(),
            int(batch["out_base"][i]),
        )
        for j, i in enumerate(rows)
    ]


@torch.no_grad()
def verified_search(
    model: Family,
    batch: Batch,
    greedy: Int[Tensor, "batch answer"],
    candidates: int,
    temperature: float = 1.0,
    seed: int = 0,
) -> Searched:
    """Up to `candidates` answers per row (the `greedy` ones first, then samples at
    `temperature`); see the module docstring. `batch` is on the CPU; the model anywhere."""
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    check_verifiable(batch)
    n, width = greedy.shape
    answers = greedy.clone()
    candidate = torch.full((n,), -1, dtype=torch.long)
    tried = torch.ones(n, dtype=torch.long)
    verdicts = _verify_rows(batch, list(range(n)), greedy)
    candidate[[i for i, v in enumerate(verdicts) if v.correct]] = 0
    device = model.device
    generator = torch.Generator(device).manual_seed(seed)
    budget = model.steps_for(batch)  # once: the same for every candidate
    for k in range(1, candidates):
        rows = torch.nonzero(candidate < 0).flatten()
        if not len(rows):
            break
        drawn = model.sample(
            batch["input_ids"][rows].to(device),
            batch["input_mask"][rows].to(device),
            budget[rows].to(device),
            max_answer=width,
            temperature=temperature,
            generator=generator,
        ).cpu()
        drawn = torch.nn.functional.pad(drawn, (0, width - drawn.shape[1]), value=PAD)[:, :width]
        tried[rows] += 1
        for row, verdict, answer in zip(
            rows.tolist(), _verify_rows(batch, rows.tolist(), drawn), drawn, strict=True
        ):
            if verdict.correct:
                candidate[row], answers[row] = k, answer
    return Searched(answers, candidate >= 0, candidate, tried)
