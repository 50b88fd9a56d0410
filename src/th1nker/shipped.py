"""The checkpoints shipped with the package, what each one covers, and which one a problem goes to.

Each directory under `th1nker/pretrained/` holds a checkpoint (`model.safetensors`, `config.yaml`,
`checksums.json`), `card.md` for people and `card.json` for tools: the one-line summary, the
command that trained it and the accuracies its run measured (written by
`benchmarks/ship_checkpoint.py`).

`th1nker solve` without `--checkpoint` sends every problem to the first model of `PREFERENCE`
that covers it: the task, operators, operand count, digit count (a factorization: the number),
signs, decimals and answer base lie in what the model was trained on, the problem's own base
before another (a model trained in base 30 reads 360 as `c0`). When none covers it fully, the
first whose task, operators, signs, decimals and answer base fit answers (and the exact check
says how that went); a problem no model fits in that way is refused with the list of shipped
models.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from th1nker.messages import shown
from th1nker.solve import reading_base
from th1nker.tasks.generators import Problems
from th1nker.tasks.generators.arithmetic import ArithmeticProblems
from th1nker.tasks.generators.factorize import FactorizeProblems
from th1nker.tasks.notation import NotationError, parse_problem
from th1nker.tasks.scheme import ArithmeticSpec, FactorizeSpec, TaskScheme
from th1nker.tasks.vocab import TOKEN_NAMES
from th1nker.train.checkpoint import load_checkpoint_config

PREFERENCE = (
    "add_sub_signed",
    "add_sub_10",
    "multiplication_4",
    "multiplication_signed",
    "expressions",
    "factorize_30",
    "base_convert",
)
"""Which shipped model answers a problem that several cover: the narrowest first."""
CARD = "card.json"


@dataclasses.dataclass(frozen=True)
class ShippedModel:
    """A shipped checkpoint and its card."""

    name: str
    path: Path
    summary: str
    command: str
    test_accuracy: float
    ood_accuracy: float
    scheme: TaskScheme

    def fit(self, problem: Problems, base: int, out_base: int | None = None) -> int | float:
        """2: the problem lies inside the training distribution; 1: its task, operators, signs,
        decimals and answer base fit but its sizes do not; 0: the model cannot answer it; a
        quarter less when the model reads it in another base than `base` (`reading_base`).
        `out_base`: the base a conversion's answer is asked in."""
        read_in = reading_base(self.scheme, base)
        out_base = read_in if out_base is None or problem.task != "base_convert" else out_base
        fits = [_fit(spec, problem, self._out_bases(spec, read_in), out_base)
                for spec in self.scheme.generators]  # fmt: skip
        best = max(fits, default=0)
        return best - 0.25 if best and read_in != base else best  # its own base first

    def _out_bases(self, spec, base: int) -> list[int]:
        """The bases this model writes answers of `spec` in, for inputs in `base`."""
        if spec.type == "base_convert":
            return [b for b in spec.to_bases or self.scheme.bases.values if b != base]
        if self.scheme.output_base == "input":
            return [base]
        return list(self.scheme.output_base.values)


def _fit(spec, problem: Problems, out_bases: list[int], out_base: int) -> int | float:
    if spec.type != problem.task or out_base not in out_bases:
        return 0
    digits, operands = (int(d[0]) for d in problem.difficulty())
    if isinstance(spec, FactorizeSpec) and isinstance(problem, FactorizeProblems):
        return 2 if int(problem.product[0]) <= spec.max_number else 1
    if isinstance(spec, ArithmeticSpec) and isinstance(problem, ArithmeticProblems):
        n = int(problem.n_operands[0])
        values = list(problem.operands[0, :n])
        used = {TOKEN_NAMES[int(op)] for op in problem.ops[0, : n - 1]}
        if not used <= set(spec.operations):
            return 0
        if any(v < 0 for v in values) and not spec.negative:
            return 0
        if any(isinstance(v, Fraction) for v in values) and not spec.decimals:
            return 0
        inside = spec.operands[0] <= operands <= spec.operands[1] and digits <= spec.digits[1]
        return 2 if inside else 1
    size = getattr(spec, "digits", None) or getattr(spec, "prime_digits", None)
    return 2 if size is None or digits <= size[1] else 1


def _read_card(path: Path) -> ShippedModel:
    card = json.loads((path / CARD).read_text())
    config, _ = load_checkpoint_config(path)
    return ShippedModel(
        name=path.name,
        path=path,
        summary=card["summary"],
        command=card["command"],
        test_accuracy=card["test_accuracy"],
        ood_accuracy=card["ood_accuracy"],
        scheme=config.task,
    )


@cache
def shipped_models() -> tuple[ShippedModel, ...]:
    """Every shipped checkpoint, in `PREFERENCE` order (others after, by name)."""
    root = Path(str(resources.files("th1nker") / "pretrained"))
    paths = sorted(p for p in root.iterdir() if (p / CARD).is_file())
    rank = {name: k for k, name in enumerate(PREFERENCE)}
    paths.sort(key=lambda p: (rank.get(p.name, len(rank)), p.name))
    return tuple(_read_card(p) for p in paths)


def route(problem: str, base: int = 10) -> ShippedModel:
    """The shipped model that answers `problem` (see the module docstring); raises NotationError
    for an unreadable problem and for one that no shipped model can answer."""
    parsed, out_base = parse_problem(problem, base)
    models = shipped_models()
    fits = np.array([model.fit(parsed, base, out_base) for model in models])
    if fits.max(initial=0) == 0:
        names = ", ".join(f"{m.name} ({m.summary})" for m in models)
        raise NotationError(
            f"{shown(problem)}: no shipped model answers {parsed.task} problems like it in base "
            f"{base}; shipped: {names}; give --checkpoint RUN to use your own"
        )
    return models[int(np.argmax(fits))]  # the first of the best fit
