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
from th1nker.search import verified_search
from th1nker.tasks.checking import VERIFIABLE, answer_tokens, check_batch, decode_factorization
from th1nker.tasks.generators import decimal
from th1nker.tasks.generators.base_convert import state_bases
from th1nker.tasks.notation import NotationError, encode_problems
from th1nker.tasks.numbers import MalformedNumber, decode_number, format_in_base
from th1nker.tasks.scheme import TASKS, TaskScheme
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
    verified: bool | None = None  # verified search: a candidate passed the verifier (None: no
    # search, or a task without a verifier)
    candidate: int | None = None  # verified search: the candidate returned (0: greedy)
    candidates_tried: int | None = None


def _written_in_base(task: str, tokens: list[int], out_base: int, shown_base: int) -> str:
    """The answer tokens (numbers in `out_base`) as text in `shown_base` ('' when they are not
    a well-formed answer)."""
    try:
        if task == "factorize":
            factors = decode_factorization(tokens, out_base)
            return "*".join(
                format_in_base(p, shown_base)
                + (f"^{format_in_base(e, shown_base)}" if e != 1 else "")
                for p, e in factors
            )
        return format_in_base(decode_number(tokens, out_base), shown_base)
    except (MalformedNumber, KeyError, ValueError):
        return ""


def reading_base(task: TaskScheme, base: int) -> int:
    """The base in which a model trained on `task` reads problems posed in `base`: that base if
    it was trained on it, else its first one. A problem is values, not text: 360 is `c0` to a
    model trained in base 30, and its answer is shown in `base` again."""
    return base if base in task.bases.values else task.bases.values[0]


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
def solve(
    model: Family,
    problems: list[str],
    base: int = 10,
    trace: bool = False,
    candidates: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
    written_in: int | None = None,
    hub_trace: bool = False,
):
    """Solutions of `problems` (all in one batch; numbers read in `base`, given to the model in
    `written_in`, default `base`: see `reading_base`; `hub_trace`: the model writes conversions
    by the hub trace, `uses_hub_trace`); raises NotationError for unreadable ones
    and for ones longer than the model reads. With `candidates` > 1, the problems that can be
    verified (factorizations) get verified search (th1nker.search): the first of up to that many
    candidates that verifies is the answer."""
    encoded = encode_problems(problems, base, written_in)
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
    searched = _search(model, batch, finals, candidates, temperature, seed)
    verdicts = check_batch(batch, finals)
    per_step = [check_batch(batch, step_answers) for step_answers in answers] if trace else []
    solutions = []
    for i, problem in enumerate(problems):
        own_steps, verdict = int(steps[i]), verdicts[i]
        task, out_base = TASKS[int(batch["task"][i])], int(batch["out_base"][i])
        shown_base = out_base if task == "base_convert" else base
        history = None
        if trace:
            bases = [out_base] * len(per_step)
            if task == "base_convert":  # the states it used, each in its own base
                in_base = int(batch["base"][i])
                bases[:own_steps] = state_bases(hub_trace, in_base, out_base, own_steps)
            history = _history(per_step, answers, i, out_base, bases)
        halts = [None if h.isnan() else float(h) for h in halt[:, i]] if trace else None
        if trace and all(h is None for h in halts):  # no halting head: what it did not use
            history, halts = history[:own_steps], halts[:own_steps]  # is only padding
        solutions.append(
            Solution(
                problem=problem,
                answer=verdict.value,
                answer_in_base=_written_in_base(
                    task, answer_tokens(finals[i].tolist()), out_base, shown_base
                ),
                out_base=shown_base,
                correct=verdict.correct,
                expected=expected[i],
                steps=own_steps,
                reason=verdict.reason,
                trace=history,
                halt=halts,
                **searched.get(i, {}),
            )
        )
    return solutions


def _history(per_step, answers, row: int, out_base: int, bases: list[int]) -> list[str]:
    """What `row` wrote at every step as decimal text: the checked answer, or the state as
    numbers and operators, each state read in the base it is written in (`bases`: a
    conversion's hub states are in other bases than its answer)."""
    history = []
    for s, base in enumerate(bases):
        tokens = answer_tokens(answers[s, row].tolist())
        answer = per_step[s][row].value if base == out_base else ""
        history.append(answer or state_text(tokens, base))
    return history


def uses_hub_trace(task: TaskScheme) -> bool:
    """Whether a model trained on `task` writes base conversions by the `hub` trace."""
    return any(getattr(spec, "trace", None) == "hub" for spec in task.generators)


def _search(model, batch, finals, candidates, temperature, seed) -> dict[int, dict]:
    """Verified search over the verifiable rows, their answers replaced in `finals`; per such
    row, the Solution fields it sets."""
    rows = [i for i, t in enumerate(batch["task"].tolist()) if TASKS[t] in VERIFIABLE]
    if candidates <= 1 or not rows:
        return {}
    sub = {name: tensor[rows] for name, tensor in batch.items()}
    found = verified_search(model, sub, finals[rows], candidates, temperature, seed)
    finals[rows] = found.answers
    return {
        row: {
            "verified": bool(found.verified[j]),
            "candidate": int(found.candidate[j]) if found.verified[j] else None,
            "candidates_tried": int(found.tried[j]),
        }
        for j, row in enumerate(rows)
    }
