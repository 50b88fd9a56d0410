"""Runs side by side: accuracy and thinking steps by digits (or operands), test and ood.

    python benchmarks/compare_runs.py RUN_DIR [RUN_DIR ...] [--group digits|operands]
                                      [--plot FILE.png] [--record TITLE]

Reads each finished run's report (`report/eval_test.json`, `eval_ood.json`, `config.yaml`,
`metrics.jsonl`) and prints one table: per run its model, parameters, optimiser steps, training
minutes, test and ood exact match, and exact match (mean thinking steps used) at every value of
the group. `--plot` draws accuracy and steps used against the group, one line per run (test
solid, ood dashed); `--record` appends the table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import record

from th1nker.models.family import build_model
from th1nker.train.experiment import load_experiment
from th1nker.train.metrics import read_metrics


def load_run(run_dir: Path) -> dict:
    config = load_experiment(run_dir / "config.yaml")
    train = [r for r in read_metrics(run_dir) if r["kind"] == "train"]
    report = run_dir / "report"
    if not (report / "eval_test.json").is_file():
        raise SystemExit(f"{run_dir}: no report/eval_test.json (has the run finished?)")
    return {
        "name": config.name,
        "model": config.model.describe(),
        "params": sum(p.numel() for p in build_model(config.model).parameters()),
        "steps": train[-1]["step"] if train else 0,
        "minutes": train[-1]["elapsed"] / 60 if train else 0.0,
        **{
            split: json.loads((report / f"eval_{split}.json").read_text())
            for split in ("test", "ood")
        },
    }


def table(runs: list[dict], group: str) -> list[str]:
    values = sorted({v for r in runs for s in ("test", "ood") for v in r[s]["by"][group]}, key=int)
    header = "| run | model | params | steps | train min | test | ood | "
    header += " | ".join(f"{group} {v}" for v in values) + " |"
    lines = [header, "|---" * (7 + len(values)) + "|"]
    for r in runs:
        cells = []
        for v in values:
            entry = r["test"]["by"][group].get(v) or r["ood"]["by"][group].get(v)
            cells.append(
                "-" if entry is None else f"{entry['accuracy']:.3f} ({entry['mean_steps']:.1f})"
            )
        lines.append(
            f"| {r['name']} | {r['model']} | {r['params']:,} | {r['steps']} | {r['minutes']:.1f} | "
            f"{r['test']['accuracy']:.3f} | {r['ood']['accuracy']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def plot(runs: list[dict], group: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (accuracy, steps) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, r in enumerate(runs):
        color = f"C{i}"
        for split, style in (("test", "o-"), ("ood", "s--")):
            by = r[split]["by"][group]
            xs = [int(v) for v in by]
            label = r["name"] if split == "test" else None
            accuracy.plot(xs, [e["accuracy"] for e in by.values()], style, color=color, label=label)
            steps.plot(xs, [e["mean_steps"] for e in by.values()], style, color=color, label=label)
    accuracy.set(xlabel=group, ylabel="exact match", ylim=(0, 1.02), title=f"accuracy vs {group}")
    steps.set(xlabel=group, ylabel="thinking steps used (mean)", title=f"steps vs {group}")
    for axis in (accuracy, steps):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("test (solid) and ood (dashed)", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--group", choices=("digits", "operands"), default="digits")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--record", default=None, metavar="TITLE")
    args = parser.parse_args()
    runs = [load_run(run) for run in args.runs]
    lines = table(runs, args.group)
    print("\n".join(lines))
    if args.plot is not None:
        plot(runs, args.group, args.plot)
    if args.record:
        record(args.record, lines)


if __name__ == "__main__":
    main()
