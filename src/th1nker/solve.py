"""Solve problems in plain notation with a trained model, check every answer exactly.

    solutions = solve(model, ["123+456*7", "factor 360", "255 to base 16"])

Each `Solution` holds the model's answer (plain decimal, or the canonical factorization), the
answer written in the output base, whether it is right (by the task language's exact checker),
the expected answer, the thinking steps used and, with `trace`, the answer and the halting
probability after every step.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import torch

from th1nker.messages import shown
from th1nker.models.family import Family, FamilyConfig
from th1nker.tasks.checking import answer_tokens, check_batch, decode_factorization
from th1nker.tasks.generators import decimal
from th1nker.tasks.notation import NotationError, encode_problems
from th1nker.tasks.numbers import MalformedNumber, decode_number, format_in_base
from th1nker.tasks.scheme import TASKS
from th1nker.tasks.stream import ProblemBatch
from th1nker.tasks.vocab import OPERATOR_IDS, TOKEN_NAMES

PRETRAINED = "add_sub_10"


def pretrained_path(name: str = PRETRAINED) -> Path:
    """The directory of a checkpoint shipped with the package."""
    return Path(str(resources.files("th1nker") / "pretrained" / name))


@dataclasses.dataclass
class Solution:
    problem: str
    answer: str  # plain decimal (or canonical factorization); "" when malformed
    answer_in_base: str
    out_base: int
    correct: bool
    expected: str
    steps: int
    reason: str
    trace: list[str] | None = None
    halt: list[float | None] | None = None  # with trace: halting probability per step (None:
    # the model has no halting head)


def _written_in_base(task: str, tokens: list[int], out_base: int) -> str:
    """The answer tokens as text in `out_base` ('' when they are not a well-formed answer)."""
    try:
        if task == "factorize":
            factors = decode_factorization(tokens, out_base)
            return "*".join(
                format_in_base(p, out_base) + (f"^{format_in_base(e, out_base)}" if e != 1 else "")
                for p, e in factors
            )
        return format_in_base(decode_number(tokens, out_base), out_base)
    except (MalformedNumber, KeyError, ValueError):
        return ""


def state_text(tokens: list[int], out_base: int) -> str:
    """A written state that is not an answer, such as `3+20-2` of a scratchpad, in decimal text:
    its numbers and the operators between them ('' when it is not well formed)."""
    parts, number = [], []
    try:
        for token in [*tokens, None]:
            if token is not None and token not in OPERATOR_IDS.values():
                number.append(token)
                continue
            parts.append(decimal(decode_number(number, out_base), 10))
            number = []
            if token is not None:
                parts.append(TOKEN_NAMES[token])
    except (MalformedNumber, ValueError):
        return ""
    return "".join(parts)


def input_refusals(model_config: FamilyConfig, encoded: ProblemBatch) -> list[str | None]:
    """Per problem: why the model cannot read it (too long), or None."""
    return [model_config.input_refusal(int(n)) for n in encoded.encoded.input_len]


@torch.no_grad()
def solve(model: Family, problems: list[str], base: int = 10, trace: bool = False):
    """Solutions of `problems` (all in one batch); raises NotationError for unreadable ones and
    for ones longer than the model reads."""
    encoded = encode_problems(problems, base)
    for problem, refusal in zip(problems, input_refusals(model.config, encoded), strict=True):
        if refusal is not None:
            raise NotationError(f"{shown(problem)}: {refusal}")
    batch = encoded.to_tensors(trace=model.needs_trace)
    expected = [answer for _, answer in encoded.describe(decimal)]
    device = model.device
    budget = model.steps_for(batch)
    out = model.generate(
        batch["input_ids"].to(device),
        batch["input_mask"].to(device),
        budget.to(device),
        max_answer=batch["target_ids"].shape[1] + 4,
        trace=trace,
    )
    answers, steps, halt = out.answers.cpu(), out.steps.cpu(), out.halt.cpu()
    rows = torch.arange(len(problems))
    finals = answers[steps - 1, rows] if trace else answers[0]
    verdicts = check_batch(batch, finals)
    per_step = [check_batch(batch, step_answers) for step_answers in answers] if trace else []
    solutions = []
    for i, problem in enumerate(problems):
        own_steps, verdict = int(steps[i]), verdicts[i]
        task, out_base = TASKS[int(batch["task"][i])], int(batch["out_base"][i])
        history = (
            [
                per_step[s][i].value or state_text(answer_tokens(answers[s, i].tolist()), out_base)
                for s in range(len(per_step))
            ]
            if trace
            else None
        )
        halts = [None if h.isnan() else float(h) for h in halt[:, i]] if trace else None
        solutions.append(
            Solution(
                problem=problem,
                answer=verdict.value,
                answer_in_base=_written_in_base(task, answer_tokens(finals[i].tolist()), out_base),
                out_base=out_base,
                correct=verdict.correct,
                expected=expected[i],
                steps=own_steps,
                reason=verdict.reason,
                trace=history,
                halt=halts,
            )
        )
    return solutions
