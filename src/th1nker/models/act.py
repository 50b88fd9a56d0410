"""Adaptive computation time for the TRM (`models/trm.py`, `TRM.loss`): one optimiser step per
supervision step.

The trainer keeps a *carry*: a batch of problems, each at its own supervision step, with their
answer and latent states (detached). Every optimiser step runs one supervision step on all rows:

    loss = mean token cross-entropy + halt_weight * BCE(halting logit, answer exactly right)

and a row halts when its halting head says done (and it has used the random minimum drawn for
exploration) or when it has used `supervision_steps`. Halted rows leave the batch: at the next
step the same rows of the fresh training batch take their places, so compute goes to the
problems that still need it. The halting label is the real exact-match correctness of the row's
current answer (all answer tokens right, eos included), as in TRM. Under trace supervision
(a batch with traces) supervision step k is taught trace state k, then the answer; the halting
label also needs the state to be the answer.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool
from torch import Tensor, nn

from th1nker.models.generation import row_exact_match
from th1nker.models.supervision import step_targets
from th1nker.tasks.vocab import PAD


def pad_columns(t: Tensor, width: int, value: int | bool, what: str) -> Tensor:
    """`t` [batch, n] padded on the right to `width` columns; a clear error if n > width."""
    if t.shape[1] > width:
        raise ValueError(f"{what} of {t.shape[1]} tokens do not fit model.answer_slots {width}")
    return nn.functional.pad(t, (0, width - t.shape[1]), value=value)


def fresh_carry(model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """New problems at step 0 with the target of each of their supervision steps [batch, N_sup,
    slots] (the answer, or under trace supervision trace state k: `models/supervision.py`); each
    row draws its minimum number of steps (2..N_sup with probability `halt_exploration`, else 1).
    """
    c = model.config
    carry = dict(model.start(batch["input_ids"], batch["input_mask"]))
    n, device = len(batch["input_ids"]), batch["input_ids"].device
    explore = torch.rand(n, device=device) < c.halt_exploration
    upper = max(c.supervision_steps + 1, 3)
    minimum = torch.where(explore, torch.randint(2, upper, (n,), device=device), 1)
    targets = step_targets(batch, torch.full((n,), c.supervision_steps, device=device))
    ids = pad_columns(targets.ids.transpose(0, 1).flatten(0, 1), c.answer_slots, PAD, "answers")
    return carry | {
        "step_ids": ids.view(n, c.supervision_steps, c.answer_slots),
        "step_final": targets.final.transpose(0, 1),
        "digits": batch["digits"],
        "min_steps": minimum,
        "halted": torch.zeros(n, dtype=torch.bool, device=device),
    }


def refill(
    carry: dict[str, Tensor], fresh: dict[str, Tensor], rows: Bool[Tensor, " batch"]
) -> dict[str, Tensor]:
    """The carry with `rows` replaced by the same rows of `fresh` (every key)."""
    return {
        key: torch.where(rows.view(-1, *[1] * (value.dim() - 1)), fresh[key], value)
        for key, value in carry.items()
    }


def act_step(
    model: nn.Module, carry: dict[str, Tensor] | None, batch: dict[str, Tensor]
) -> tuple[dict[str, Tensor], Tensor, dict[str, int]]:
    """One supervision step on the carry (halted rows replaced from `batch` first). Returns the
    next carry (detached), the loss (with graph) and statistics of the rows that halted now:
    `halted`, `correct` and `halted_steps` (sum of their steps), and `tokens` trained on."""
    c = model.config
    fresh = fresh_carry(model, batch)
    carry = fresh if carry is None else refill(carry, fresh, carry["halted"])
    state = {k: carry[k] for k in ("tokens", "mask", "y", "z", "steps")}
    following, logits, halt_logit = model.supervision_step(state)
    rows = torch.arange(len(state["steps"]), device=logits.device)
    step = state["steps"].clamp(max=c.supervision_steps - 1)  # this supervision step, 0-based
    target_ids = carry["step_ids"][rows, step]
    target_mask = target_ids != PAD
    token_loss = nn.functional.cross_entropy(
        logits.float().flatten(0, 1), target_ids.flatten(), reduction="none"
    )
    loss = (token_loss * target_mask.flatten()).sum() / target_mask.sum()
    right = row_exact_match(logits, target_ids, target_mask) & carry["step_final"][rows, step]
    if c.halting:
        loss = loss + c.halt_weight * nn.functional.binary_cross_entropy_with_logits(
            halt_logit.float(), right.float()
        )
    steps = following["steps"]
    wants = model.wants_to_halt(halt_logit.detach()) & (steps >= carry["min_steps"])
    halted = (steps >= c.supervision_steps) | wants
    stats = {
        "halted": int(halted.sum()),
        "correct": int((right & halted).sum()),
        "halted_steps": int(steps[halted].sum()),
        "tokens": int(target_mask.sum()),
    }
    return carry | dict(following) | {"halted": halted}, loss, stats
