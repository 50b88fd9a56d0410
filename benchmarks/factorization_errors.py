"""What a factorisation model gets wrong: its greedy answers on held-out composites, by class.

    python benchmarks/factorization_errors.py RUN [RUN ...] [--n 1000] [--record]

The problems are the first `n` composites (two or more prime factors) of the run's test split.
Each wrong answer falls in the first class that fits it:

- malformed: not a product of numbers;
- called prime: the number itself, as if it were prime;
- first factor not a divisor: the smallest factor written does not divide n;
- first factor a divisor, not the smallest;
- smallest factor right, the rest wrong: the search found it; the cofactor was then mis-divided
  or mis-factorised (a prime cofactor split into invented factors lands here).
"""

from __future__ import annotations

import argparse
import math
import re
from collections import Counter
from pathlib import Path

import torch
from common import record

from th1nker.solve import reading_base, solve
from th1nker.tasks.generators.factorize import FactorizeProblems
from th1nker.tasks.stream import ProblemStream
from th1nker.train.checkpoint import load_checkpoint
from th1nker.train.device import pick_device

CLASSES = (
    "right",
    "malformed",
    "called prime",
    "first factor not a divisor",
    "first factor a divisor, not the smallest",
    "smallest factor right, the rest wrong",
)


def held_out_composites(scheme, n: int) -> list[tuple[int, int, int]]:
    """(number, smallest prime factor, prime factors) of the first `n` test composites."""
    stream, rows, index = ProblemStream(scheme, "test", 500, seed=1234), [], 0
    while len(rows) < n:
        for problems, _ in stream.batch(index).parts:
            if isinstance(problems, FactorizeProblems):
                for i in range(len(problems)):
                    count = int(problems.n_primes[i])
                    if count >= 2:
                        primes = [int(p) for p in problems.primes[i, :count]]
                        rows.append((math.prod(primes), min(primes), count))
        index += 1
    return rows[:n]


def error_class(answer: str, number: int, smallest: int, correct: bool) -> str:
    if correct:
        return CLASSES[0]
    if not re.fullmatch(r"\d+(\^\d+)?(\*\d+(\^\d+)?)*", answer):
        return CLASSES[1]
    if answer == str(number):
        return CLASSES[2]
    first = int(re.match(r"\d+", answer)[0])
    if first < 2 or number % first:
        return CLASSES[3]
    return CLASSES[4] if first != smallest else CLASSES[5]


def classify(run: Path, n: int) -> dict[str, Counter]:
    """Per factor count ("2", "3+"), the count of each class."""
    config, model, _ = load_checkpoint(run, pick_device("auto"))
    problems = held_out_composites(config.task, n)
    written_in = reading_base(config.task, 10)
    counts = {"2": Counter(), "3+": Counter()}
    for start in range(0, n, 200):
        chunk = problems[start : start + 200]
        texts = [f"factor {number}" for number, _, _ in chunk]
        for (number, smallest, count), s in zip(
            chunk, solve(model, texts, 10, written_in=written_in), strict=True
        ):
            counts["2" if count == 2 else "3+"][
                error_class(s.answer, number, smallest, s.correct)
            ] += 1
    return counts


def table(runs: dict[str, dict[str, Counter]]) -> list[str]:
    lines = ["| run | prime factors | problems | " + " | ".join(CLASSES) + " |"]
    lines.append("|---|---|---|" + "---|" * len(CLASSES))
    for name, by_count in runs.items():
        for count, counter in by_count.items():
            total = sum(counter.values())
            cells = [f"{counter[c] / max(total, 1):.3f}" for c in CLASSES]
            lines.append(f"| {name} | {count} | {total} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=1000, help="held-out composites per run")
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = table({run.name: classify(run, args.n) for run in args.runs})
    print("\n".join(lines))
    if args.record:
        record("Factorisation: error classes of greedy answers on held-out composites", lines)


if __name__ == "__main__":
    main()
