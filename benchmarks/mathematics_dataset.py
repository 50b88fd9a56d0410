"""DeepMind's mathematics_dataset (Saxton et al. 2019), `arithmetic__add_or_sub` and
`arithmetic__mul`, posed to the shipped models (or one checkpoint) through `th1nker solve`.

    python benchmarks/mathematics_dataset.py [--n 1000] [--checkpoint RUN] [--record]

The dataset's files (2 GB) and its package are not reachable from this machine, so the questions
are drawn here the way its generator draws them (mathematics_dataset/modules/arithmetic.py and
sample/number.py, read from the public repository; re-implemented, not copied): an entropy of 12
for add_or_sub and 8 for mul in the interpolation split, 16..20 and 10..12 in extrapolation,
split between the two operands (`_entropy_for_pair`); each operand an integer or (half the time)
a decimal, signed, uniform in a range of about 10**entropy numbers; the question written with one
of the module's templates. `translate` turns each template back into plain notation (`-5+-43`;
"the distance between a and b" becomes larger-smaller) and every answer is checked exactly
against the value the generator computed. `arithmetic__mixed` is not posed: its questions use
parentheses and fractions, which the task language does not have.
"""

from __future__ import annotations

import argparse
import math
import random
import re
from fractions import Fraction
from pathlib import Path

from common import record

from th1nker.shipped import route
from th1nker.solve import solve
from th1nker.tasks.notation import NotationError
from th1nker.tasks.numbers import format_in_base
from th1nker.train.checkpoint import load_checkpoint

ADD = ["{p} + {q}", "{p}+{q}", "Work out {p} + {q}.", "Add {p} and {q}.", "Put together {p} and {q}.",
       "Sum {p} and {q}.", "Total of {p} and {q}.", "Add together {p} and {q}.",
       "What is {p} plus {q}?", "Calculate {p} + {q}.", "What is {p} + {q}?"]  # fmt: skip
SUB = ["{p} - {q}", "Work out {p} - {q}.", "What is {p} minus {q}?", "What is {p} take away {q}?",
       "What is {q} less than {p}?", "Subtract {q} from {p}.", "Calculate {p} - {q}.",
       "What is {p} - {q}?"]  # fmt: skip
BETWEEN = [
    f"What is the {a} between {pair}?"
    for a in ("distance", "difference")
    for pair in ("{p} and {q}", "{q} and {p}")
]  # fmt: skip  (only when p >= q)
MUL = ["{p}*{q}", "{p} * {q}", "Calculate {p}*{q}.", "Work out {p} * {q}.", "Multiply {p} and {q}.",
       "Product of {p} and {q}.", "What is the product of {p} and {q}?", "{p} times {q}",
       "What is {p} times {q}?"]  # fmt: skip
ENTROPY = {  # (module, split) -> entropy range
    ("add_or_sub", "interpolate"): (12, 12),
    ("add_or_sub", "extrapolate"): (16, 20),
    ("mul", "interpolate"): (8, 8),
    ("mul", "extrapolate"): (10, 12),
}


def integer(rng: random.Random, entropy: float) -> int:
    """A signed integer from a range of about 10**entropy numbers around zero."""
    top = int(math.ceil(10**entropy / 2))
    return rng.randint(-top, top)


def integer_or_decimal(rng: random.Random, entropy: float) -> int | Fraction:
    """Half the time an integer, else a decimal (an integer over 10**shift, never whole)."""
    if rng.choice([False, True]):
        return integer(rng, entropy)
    while True:
        value, shift = integer(rng, entropy), rng.randint(1, int(math.ceil(entropy)))
        if value % 10**shift:
            return Fraction(value, 10**shift)


def question(rng: random.Random, module: str, split: str) -> tuple[str, int | Fraction]:
    """(question text, its exact answer) as the module draws them."""
    low, high = ENTROPY[module, split]
    entropy = rng.uniform(low, high)
    entropy_p = max(1.0, rng.uniform(0, entropy))
    entropy_q = max(1.0, entropy - entropy_p)
    p, q = integer_or_decimal(rng, entropy_p), integer_or_decimal(rng, entropy_q)
    if module == "mul":
        template, answer = rng.choice(MUL), p * q
    elif rng.choice([False, True]):
        template, answer = rng.choice(ADD), p + q
    else:
        template, answer = rng.choice(SUB + (BETWEEN if p >= q else [])), p - q
    return template.format(p=format_in_base(p, 10), q=format_in_base(q, 10)), answer


_NUMBER = r"(-?\d+(?:\.\d+)?)"


def _pattern(template: str) -> re.Pattern:
    text = re.escape(template).replace(r"\{p\}", "(?P<p>" + _NUMBER + ")")
    return re.compile("^" + text.replace(r"\{q\}", "(?P<q>" + _NUMBER + ")") + "$")


_PLAIN = [(_pattern(t), "+") for t in ADD] + [(_pattern(t), "-") for t in SUB]
_PLAIN += [(_pattern(t), "between") for t in BETWEEN] + [(_pattern(t), "*") for t in MUL]


def translate(text: str) -> str:
    """A question in plain notation (`What is -5 plus -43?` -> `-5+-43`); ValueError if none of
    the templates reads it."""
    for pattern, op in _PLAIN:
        if match := pattern.match(text):
            p, q = match["p"], match["q"]
            if op == "between":  # the answer is the larger minus the smaller
                p, q = sorted((p, q), key=Fraction, reverse=True)
                op = "-"
            return f"{p}{op}{q}"
    raise ValueError(f"no template reads {text!r}")


def _solve_all(problems: list[str], checkpoint: Path | None) -> list[tuple[str, str, bool]]:
    """(model name, answer, right) per problem; ('none', '', False) where no model answers."""
    models, results = {}, {}
    groups: dict[Path, list[int]] = {}
    for i, problem in enumerate(problems):
        try:
            path = checkpoint or route(problem).path
        except NotationError:
            results[i] = ("none", "", False)
            continue
        groups.setdefault(path, []).append(i)
    for path, rows in groups.items():
        models[path] = load_checkpoint(path)[1]
        for start in range(0, len(rows), 256):
            chunk = rows[start : start + 256]
            for i, s in zip(chunk, solve(models[path], [problems[i] for i in chunk]), strict=True):
                results[i] = (path.name, s.answer, s.correct)
    return [results[i] for i in range(len(problems))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="questions per module and split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, help="one run for all (default: shipped)")
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    lines = ["| module | split | operands | exact match | questions | answered by |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for module, split in ENTROPY:
        rng = random.Random(f"{args.seed}-{module}-{split}")
        drawn = [question(rng, module, split) for _ in range(args.n)]
        problems = [translate(text) for text, _ in drawn]
        solved = _solve_all(problems, args.checkpoint)
        for kind in ("integer", "decimal"):
            rows = [i for i, p in enumerate(problems) if ("." in p) == (kind == "decimal")]
            if not rows:
                continue
            for i in rows:  # the model's verdict against the generator's own answer
                assert not solved[i][2] or Fraction(solved[i][1]) == drawn[i][1], drawn[i]
            right = sum(solved[i][2] for i in rows)
            by = sorted({solved[i][0] for i in rows})
            lines.append(
                f"| {module} | {split} | {kind} | {right / len(rows):.4f} | {len(rows)} | "
                f"{', '.join(by)} |"
            )
            print(lines[-1], flush=True)
    example = drawn[0][0]
    note = f"; e.g. {example!r} -> `{translate(example)}`"
    print("\n".join(lines))
    if args.record:
        record("mathematics_dataset arithmetic (re-drawn), th1nker solve", lines, note)


if __name__ == "__main__":
    main()
