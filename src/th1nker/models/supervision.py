"""What each thinking step is taught: the final answer (deep supervision), or the state an exact
algorithm reaches after as many steps (trace supervision, docs/task-language.md#traces).

With a batch that carries traces (`trace_ids`, `trace_mask`, `trace_len`: see
`ProblemBatch.trace_tensors`), step k of a row is taught trace state min(k, trace_len - 1): the
state of the algorithm after k + 1 steps, then the answer on every spare step. A row's last step
is always taught the answer, even when its budget is shorter than its trace. Without traces every
step is taught the answer.
"""

from __future__ import annotations

import dataclasses

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from th1nker.models.family import Batch
from th1nker.tasks.vocab import PAD


@dataclasses.dataclass
class StepTargets:
    """ids, mask [steps, batch, width]: each step's target tokens; final [steps, batch]: whether
    that target is the answer (the algorithm's last state)."""

    ids: Int[Tensor, "steps batch width"]
    mask: Bool[Tensor, "steps batch width"]
    final: Bool[Tensor, "steps batch"]

    def last(self, steps: Int[Tensor, " batch"]) -> tuple[Tensor, Tensor]:
        """(ids, mask) [batch, width] of every row at its own last step: its answer."""
        rows = torch.arange(len(steps), device=steps.device)
        return self.ids[steps - 1, rows], self.mask[steps - 1, rows]


def step_targets(batch: Batch, steps: Int[Tensor, " batch"]) -> StepTargets:
    """The target of every thinking step up to the largest of `steps` (see the module doc)."""
    n_steps, rows = int(steps.max()), torch.arange(len(steps), device=steps.device)
    answer, answer_mask = batch["target_ids"], batch["target_mask"]
    if "trace_ids" not in batch:
        shape = (n_steps, *answer.shape)
        final = torch.ones(n_steps, len(steps), dtype=torch.bool, device=steps.device)
        return StepTargets(answer.expand(shape), answer_mask.expand(shape), final)
    trace, trace_len = batch["trace_ids"], batch["trace_len"]
    width = max(trace.shape[2], answer.shape[1])
    trace = torch.nn.functional.pad(trace, (0, width - trace.shape[2]), value=PAD)
    answer = torch.nn.functional.pad(answer, (0, width - answer.shape[1]), value=PAD)
    step = torch.arange(n_steps, device=steps.device)[:, None]
    state = torch.minimum(step, trace_len[None, :] - 1)  # [steps, batch]
    ids = trace[rows[None, :], state]  # [steps, batch, width]
    last = step == steps[None, :] - 1
    ids = torch.where(last[:, :, None], answer[None], ids)
    final = last | (state == trace_len[None, :] - 1)
    return StepTargets(ids, ids != PAD, final)


def answer_only(batch: Batch, rows: Bool[Tensor, " batch"]) -> Batch:
    """The batch with the trace of `rows` replaced by their answer in every state: those rows are
    taught the answer at every step (their trace length, hence their step budget, is kept)."""
    trace = batch["trace_ids"]
    answer = torch.nn.functional.pad(
        batch["target_ids"], (0, trace.shape[2] - batch["target_ids"].shape[1]), value=PAD
    )
    trace = torch.where(rows[:, None, None], answer[:, None, :], trace)
    return {**batch, "trace_ids": trace, "trace_mask": trace != PAD}
