"""The end-of-run report: test and ood evaluation, a fixed-steps sweep, plots and a summary.

Writes RUN/report/: `eval_test.json`, `eval_ood.json`, `steps_sweep.json`, `summary.json`,
`loss.png`, `accuracy_vs_digits.png`, `accuracy_vs_operands.png`, `accuracy_vs_steps.png` and
`report.md` (tables of the same numbers, with links to the plots).
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from th1nker.models.family import Family
from th1nker.train.evaluate import EvalResult, evaluate
from th1nker.train.experiment import ExperimentConfig
from th1nker.train.metrics import read_metrics


def final_evaluation(
    model: Family, config: ExperimentConfig, run_dir: Path, console: Console
) -> dict:
    """Evaluate test and ood, sweep fixed step counts, write plots and report.md; the summary."""
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    ev = config.eval
    results: dict[str, EvalResult] = {}
    for split in ("test", "ood"):
        results[split] = evaluate(
            model, config.task, split, ev.final_examples, ev.batch_size, ev.seed
        )
        (out / f"eval_{split}.json").write_text(json.dumps(results[split].to_json(), indent=1))
    sweep = {
        split: {
            steps: evaluate(
                model, config.task, split, ev.examples, ev.batch_size, ev.seed, steps
            ).accuracy
            for steps in ev.steps_sweep
        }
        for split in ("test", "ood")
    }
    (out / "steps_sweep.json").write_text(json.dumps(sweep, indent=1))
    summary = {
        "test_accuracy": results["test"].accuracy,
        "ood_accuracy": results["ood"].accuracy,
        "test_by_digits": {d: c / t for d, (c, t) in results["test"].by["digits"].items()},
        "ood_by_digits": {d: c / t for d, (c, t) in results["ood"].by["digits"].items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if ev.plots:
        write_plots(run_dir, results, sweep)
    (out / "report.md").write_text(render_markdown(config, results, sweep, read_metrics(run_dir)))
    console.print(
        f"test exact match {summary['test_accuracy']:.4f} ({results['test'].total} problems), "
        f"ood {summary['ood_accuracy']:.4f}; report in {escape(str(out / 'report.md'))}"
    )
    return summary


def _accuracy_table(result: EvalResult, group: str) -> str:
    rows = [f"| {group} | accuracy | problems | mean thinking steps |", "|---|---|---|---|"]
    for value, (correct, total) in result.by[group].items():
        steps = result.steps_by[group][value]
        rows.append(f"| {value} | {correct / total:.4f} | {total} | {steps:.2f} |")
    return "\n".join(rows)


def render_markdown(
    config: ExperimentConfig,
    results: dict[str, EvalResult],
    sweep: dict[str, dict[int, float]],
    metrics: list[dict],
) -> str:
    train = [r for r in metrics if r["kind"] == "train"]
    last = train[-1] if train else {}
    lines = [
        f"# Run report: {config.name}",
        "",
        f"- steps trained: {last.get('step', 0)}, training time {last.get('elapsed', 0) / 60:.1f}"
        f" min, last train loss {last.get('loss', float('nan')):.4f}",
        f"- model: {config.model.describe()}",
        "",
        "| split | exact match | problems | mean thinking steps |",
        "|---|---|---|---|",
    ]
    for split, result in results.items():
        lines.append(
            f"| {split} | {result.accuracy:.4f} | {result.total} | {result.mean_steps:.2f} |"
        )
    for split, result in results.items():
        for group in ("task", "base", "conversion", "digits", "operands"):
            if len(result.by.get(group, {})) > 1 or group == "digits":
                table = _accuracy_table(result, group)
                lines += ["", f"## {split}: accuracy by {group}", "", table]
    if config.task.curriculum is not None:
        checks = [r for r in metrics if r["kind"] == "stage"]
        lines += ["", "## curriculum", "", "| stage | ranges | reached at step | training min |"]
        lines.append("|---|---|---|---|")
        reached = {0: (0, 0.0)} | {
            r["stage"] + 1: (r["step"], r["elapsed"] / 60) for r in checks if r["promoted"]
        }
        for k, stage in enumerate(config.task.curriculum.stages):
            ranges = ", ".join(f"{n} {list(v)}" for n, v in stage.fields().items())
            step, minutes = reached.get(k, ("-", None))
            when = "-" if minutes is None else f"{minutes:.1f}"
            lines.append(f"| {k} | {ranges} | {step} | {when} |")
    lines += ["", "## accuracy with a fixed number of thinking steps", ""]
    lines += ["| steps | " + " | ".join(sweep) + " |", "|---" * (len(sweep) + 1) + "|"]
    for steps in next(iter(sweep.values())):
        lines.append(f"| {steps} | " + " | ".join(f"{sweep[s][steps]:.4f}" for s in sweep) + " |")
    if config.eval.plots:
        lines += ["", "![loss](loss.png)", "![digits](accuracy_vs_digits.png)"]
        lines += ["![operands](accuracy_vs_operands.png)", "![steps](accuracy_vs_steps.png)"]
        lines += ["![thinking](steps_vs_difficulty.png)"]
    return "\n".join([*lines, ""])


def write_plots(
    run_dir: Path, results: dict[str, EvalResult], sweep: dict[str, dict[int, float]]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = run_dir / "report"
    metrics = read_metrics(run_dir)
    train = [r for r in metrics if r["kind"] == "train"]
    val = [r for r in metrics if r["kind"] == "eval"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        steps = [r["step"] for r in train]
        left.plot(steps, [r["loss"] for r in train], label="mean over thinking steps", lw=2)
        for i in range(len(train[-1]["loss_per_step"])):
            values = [r["loss_per_step"][i] if i < len(r["loss_per_step"]) else None for r in train]
            left.plot(steps, values, label=f"thinking step {i + 1}", lw=1, alpha=0.7)
        right.plot(steps, [r["accuracy"] for r in train], label="train (teacher forced)")
    if val:
        right.plot([r["step"] for r in val], [r["accuracy"] for r in val], "o-", label="val")
    left.set(yscale="log", xlabel="optimiser step", ylabel="cross-entropy", title="loss")
    right.set(xlabel="optimiser step", ylabel="exact match", title="accuracy", ylim=(0, 1.02))
    for axis in (left, right):
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "loss.png", dpi=110)
    plt.close(figure)
    for group in ("digits", "operands"):
        figure, axis = plt.subplots(figsize=(7, 4))
        for split, result in results.items():
            table = result.by[group]
            axis.plot(
                [int(v) for v in table], [c / t for c, t in table.values()], "o-", label=split
            )
        axis.set(xlabel=group, ylabel="exact match", ylim=(0, 1.02), title=f"accuracy vs {group}")
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(out / f"accuracy_vs_{group}.png", dpi=110)
        plt.close(figure)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, group in zip(axes, ("digits", "operands"), strict=True):
        for split, result in results.items():
            table = result.steps_by[group]
            axis.plot([int(v) for v in table], list(table.values()), "o-", label=split)
        axis.set(xlabel=group, ylabel="mean thinking steps used", title=f"steps vs {group}")
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "steps_vs_difficulty.png", dpi=110)
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(7, 4))
    for split, accuracies in sweep.items():
        axis.plot(list(accuracies), list(accuracies.values()), "o-", label=split)
    axis.set(xlabel="thinking steps (fixed)", ylabel="exact match", ylim=(0, 1.02))
    axis.set_title("accuracy vs thinking steps")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "accuracy_vs_steps.png", dpi=110)
    plt.close(figure)
