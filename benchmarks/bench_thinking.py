"""Thinking steps, measured: accuracy after a fixed number of steps vs with learned halting, and
the steps halting uses by difficulty, for trained runs (Th1nker or TRM) on their test/ood splits.

    python benchmarks/bench_thinking.py RUN_DIR [RUN_DIR ...] [--n 2000] [--split test]
        [--plot steps.png] [--thresholds 0.3 0.5 0.7 0.9] [--record]

Every problem is decoded once with `trace`: its answer after every step 1..budget, checked exactly;
"fixed k" is the accuracy of the answers after step k (every problem), "halting" the accuracy of
each problem's answer at the step its halting head stopped it, with the mean steps that used, and
"fixed, same compute" the fixed-steps accuracy interpolated at that mean. Then the mean steps
used (and accuracy) by digits and by operands, also plotted with `--plot`. `--thresholds` replays
the trace with other halting thresholds (each problem stops at the first step whose halting
probability reaches it): accuracy vs mean compute, against fixed steps at the same compute.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from common import record

from th1nker.tasks.checking import check_batch
from th1nker.tasks.stream import ProblemStream
from th1nker.train.checkpoint import load_checkpoint


@torch.no_grad()
def trace_run(run: str, split: str, n: int, batch_size: int = 500, seed: int = 1234) -> dict:
    """correct [steps, n] after every step, steps used [n], step budget [n], halting probability
    after every step [steps, n], digits [n], operands [n]."""
    config, model, _ = load_checkpoint(run)
    stream = ProblemStream(config.task, split, batch_size, seed)
    correct, used, budgets, halt, digits, operands = [], [], [], [], [], []
    for index in range((n + batch_size - 1) // batch_size):
        batch = stream.batch(index).to_tensors()
        budget = model.steps_for(batch)
        out = model.generate(
            batch["input_ids"], batch["input_mask"], budget, batch["target_ids"].shape[1] + 2,
            trace=True,
        )  # fmt: skip
        correct.append(
            torch.tensor([[v.correct for v in check_batch(batch, a)] for a in out.answers])
        )
        used.append(out.steps)
        budgets.append(budget)
        halt.append(out.halt)
        digits.append(batch["digits"])
        operands.append(batch["operands"])
    return {
        "config": config,
        "correct": torch.cat(correct, 1)[:, :n].float(),
        "used": torch.cat(used)[:n],
        "budget": torch.cat(budgets)[:n],
        "halt": torch.cat(halt, 1)[:, :n],
        "digits": torch.cat(digits)[:n],
        "operands": torch.cat(operands)[:n],
    }


def halting_at(t: dict, threshold: float) -> torch.Tensor:
    """Steps [n] each problem uses when it stops at the first step whose halting probability
    reaches `threshold`, or at its budget (what `generate` does with that threshold)."""
    steps = torch.arange(1, t["halt"].shape[0] + 1)[:, None]
    stops = (t["halt"] >= threshold) | (steps >= t["budget"])
    return stops.float().argmax(0) + 1


def at_stops(t: dict, used: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """For problems that stop after `used` [n] steps: whether each is right [n], the mean steps,
    and the fixed-steps accuracy interpolated at that mean (the same compute)."""
    right = t["correct"][used - 1, torch.arange(len(used))]
    mean_steps = float(used.float().mean())
    fixed = t["correct"].mean(1).numpy()
    return right, mean_steps, float(np.interp(mean_steps, np.arange(1, len(fixed) + 1), fixed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--plot", default=None, help="write steps used vs digits to this PNG")
    parser.add_argument(
        "--thresholds", type=float, nargs="*", default=[],
        help="also sweep the halting threshold over these probabilities",
    )  # fmt: skip
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    lines = [
        "| run | model | fixed steps: accuracy | halting: accuracy (mean steps) | fixed, same "
        "compute |",
        "|---|---|---|---|---|",
    ]
    group_lines = {
        group: [f"| run | {group}: mean steps used (accuracy) |", "|---|---|"]
        for group in ("digits", "operands")
    }
    sweep = [
        "| run | halting threshold | accuracy | mean steps | fixed steps, same compute |",
        "|---|---:|---:|---:|---:|",
    ]
    curves = {}
    for run in args.runs:
        t = trace_run(run, args.split, args.n)
        threshold = t["config"].model.halt_threshold
        assert torch.equal(halting_at(t, threshold), t["used"]), "sweep disagrees with generate"
        fixed = t["correct"].mean(1).tolist()
        right, mean_steps, same = at_stops(t, t["used"])
        fixed_text = ", ".join(f"{k + 1}: {a:.4f}" for k, a in enumerate(fixed))
        name = t["config"].name
        lines.append(
            f"| {name} | {t['config'].model.describe()} | {fixed_text} | {right.mean():.4f} "
            f"({mean_steps:.2f}) | {same:.4f} |"
        )
        for threshold in args.thresholds:
            right_at, steps, same_at = at_stops(t, halting_at(t, threshold))
            sweep.append(
                f"| {name} | {threshold:g} | {right_at.mean():.4f} | {steps:.2f} | {same_at:.4f} |"
            )
        for group, group_table in group_lines.items():
            table = defaultdict(list)
            for value, s, ok in zip(
                t[group].tolist(), t["used"].tolist(), right.tolist(), strict=True
            ):
                table[value].append((s, ok))
            curve = {v: float(np.mean([s for s, _ in table[v]])) for v in sorted(table)}
            curves[(name, group)] = curve
            cells = ", ".join(
                f"{v}: {curve[v]:.2f} ({np.mean([ok for _, ok in table[v]]):.3f})" for v in curve
            )
            group_table.append(f"| {name} | {cells} |")
    tables = lines + [line for group in group_lines.values() for line in ["", *group]]
    if args.thresholds:
        tables += ["", *sweep]
    print("\n".join(tables))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(1, 2, figsize=(11, 4))
        for axis, group in zip(axes, group_lines, strict=True):
            for (name, curve_group), curve in curves.items():
                if curve_group == group:
                    axis.plot(list(curve), list(curve.values()), "o-", label=name)
            axis.set(xlabel=group, ylabel="mean thinking steps used", title=args.split)
            axis.legend(fontsize=8)
            axis.grid(alpha=0.3)
        figure.tight_layout()
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.plot, dpi=110)
    if args.record:
        record(f"Thinking steps: fixed vs halting ({args.split})", tables)


if __name__ == "__main__":
    main()
