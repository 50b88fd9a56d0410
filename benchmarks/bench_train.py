"""Training speed and sample efficiency of an experiment (default: the main job).

    python benchmarks/bench_train.py [--config FILE] [key=value ...] [--eval-every 100]
                                     [--eval-examples 1000] [--label TEXT] [--record]

Trains the experiment once, evaluating the val split every `--eval-every` steps (evaluation time is
not counted as training time), and prints one table row: parameters, examples/s and tokens/s,
steps and training minutes until val exact match first reaches 90% and 99%, the final test and ood
exact match (test at the largest in-distribution digit count too), peak memory and wall time.
--record appends it to benchmarks/RESULTS.md with the machine and command.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch
from common import record
from rich.console import Console

from th1nker.train.experiment import load_experiment
from th1nker.train.metrics import read_metrics
from th1nker.train.trainer import Trainer

COLUMNS = (
    "run | params | examples/s | tokens/s | steps to 90% | min to 90% | steps to 99% | "
    "min to 99% | steps | train min | test | test at max digits | ood | peak MB | wall min"
)


def first_reaching(evals: list[dict], target: float) -> tuple[str, str]:
    hit = next((r for r in evals if r["accuracy"] >= target), None)
    return ("-", "-") if hit is None else (str(hit["step"]), f"{hit['elapsed'] / 60:.2f}")


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="key=value experiment overrides")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-examples", type=int, default=1000)
    parser.add_argument("--label", default="default")
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        config = load_experiment(
            args.config,
            [
                f"train.eval_every={args.eval_every}",
                f"eval.examples={args.eval_examples}",
                "train.tensorboard=false",
                f"train.runs_dir={runs}",
                *args.overrides,
            ],
        )
        start = time.perf_counter()
        trainer = Trainer(config, Path(runs) / "run", Console(stderr=True))
        summary = trainer.run()
        wall = time.perf_counter() - start
        metrics = read_metrics(Path(runs) / "run")
    train = [r for r in metrics if r["kind"] == "train"]
    evals = [r for r in metrics if r["kind"] == "eval"]
    examples = sum(r["examples_per_s"] for r in train) / len(train)
    tokens = sum(r["tokens_per_s"] for r in train) / len(train)
    top_digits = max(summary["test_by_digits"], key=int)
    params = sum(p.numel() for p in trainer.model.parameters())
    row = [
        args.label,
        f"{params:,}",
        f"{examples:,.0f}",
        f"{tokens:,.0f}",
        *first_reaching(evals, 0.90),
        *first_reaching(evals, 0.99),
        str(summary["steps"]),
        f"{summary['training_minutes']:.2f}",
        f"{summary['test_accuracy']:.4f}",
        f"{summary['test_by_digits'][top_digits]:.4f} ({top_digits} digits)",
        f"{summary['ood_accuracy']:.4f}",
        f"{peak_memory_mb(trainer.device):,.0f}",
        f"{wall / 60:.2f}",
    ]
    lines = [
        "| " + COLUMNS + " |",
        "|---" + "|---:" * (COLUMNS.count("|")) + "|",
        "| " + " | ".join(row) + " |",
    ]
    print("\n".join(lines))
    if args.record:
        record("Training", lines, f", device {trainer.device}")


if __name__ == "__main__":
    main()
