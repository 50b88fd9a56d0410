"""Factorisation runs measured as issue 16 asks: greedy top-1 and verified@k apart, by smallest
prime factor, by number of prime factors and by size, in and beyond the trained range.

    python benchmarks/factorization.py RUN [RUN ...] [--n 2000] [--k 16] [--record]

Each run is evaluated on held-out problems of its own task (test split) and on the same sampler
with larger bounds, n < 2^20 and n < 2^24 (ood in size; rows of 17+ bits never occur in
training). Greedy top-1 is the model's one answer; verified@k is the share of problems for which
one of k candidates (greedy first, then samples at temperature 1) has prime factors multiplying
to the number (th1nker.search). Writes benchmarks/images/factorization.png: accuracy vs bits of
n, accuracy vs smallest prime factor, and scratchpad states written vs number of prime factors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from common import ROOT, record  # noqa: E402

from th1nker.train.checkpoint import load_checkpoint  # noqa: E402
from th1nker.train.device import pick_device  # noqa: E402
from th1nker.train.evaluate import EvalResult, evaluate  # noqa: E402

SIZES = {"2^20": (2**20 - 1, 19), "2^24": (2**24 - 1, 23)}  # bound, most prime factors


def beyond(scheme, bound: int, factors: int):
    """The run's scheme with its factorization generator drawing n <= bound."""
    data = scheme.model_dump()
    for spec in data["generators"]:
        spec |= {"max_number": bound, "factors": [1, factors], "ood": {}}
    return type(scheme).model_validate(data)


def share(result: EvalResult, group: str, value: str, verified: bool = False) -> str:
    correct, total = result.by[group][value]
    hits = result.verified_by[group][value] if verified else correct
    return f"{hits / total:.3f}"


def beyond_16_bits(result: EvalResult, verified: bool = False) -> tuple[float, int]:
    """(accuracy, problems) over the rows of 17 bits and more."""
    cells = [(v, c) for v, c in result.by["bits"].items() if int(v) > 16]
    total = sum(t for _, (_, t) in cells)
    hits = sum(result.verified_by["bits"][v] if verified else c for v, (c, _) in cells)
    return hits / max(total, 1), total


def measure(run: Path, n: int, k: int) -> dict[str, EvalResult]:
    config, model, _ = load_checkpoint(run, pick_device("auto"))
    torch.manual_seed(0)
    results = {"test": evaluate(model, config.task, "test", n, 250, 1234, candidates=k)}
    for name, (bound, factors) in SIZES.items():
        scheme = beyond(config.task, bound, factors)
        results[name] = evaluate(model, scheme, "test", n, 250, 1234, candidates=k)
    return results


def table(runs: dict[str, dict[str, EvalResult]], k: int) -> list[str]:
    lines = [
        f"| run | split | greedy top-1 | verified@{k} | problems | 17+ bits greedy | "
        f"17+ bits verified@{k} | 17+ bits problems |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, results in runs.items():
        for split, r in results.items():
            far, far_total = beyond_16_bits(r)
            far_verified, _ = beyond_16_bits(r, verified=True)
            extra = f"{far:.3f} | {far_verified:.3f} | {far_total}" if far_total else "- | - | 0"
            lines.append(
                f"| {name} | {split} | {r.accuracy:.4f} | {r.verified_accuracy:.4f} | "
                f"{r.total} | {extra} |"
            )
    for group in ("smallest_factor", "operands"):
        label = "smallest prime factor" if group == "smallest_factor" else "prime factors"
        values = sorted(
            {v for results in runs.values() for v in results["test"].by[group]},
            key=lambda v: int(v.split("-")[0]),
        )
        lines += ["", f"Test split by {label} (greedy / verified@{k}):", ""]
        lines += [f"| run | {' | '.join(values)} |", "|---|" + "---|" * len(values)]
        for name, results in runs.items():
            r = results["test"]
            cells = [
                f"{share(r, group, v)} / {share(r, group, v, True)}" if v in r.by[group] else "-"
                for v in values
            ]
            lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def plot(runs: dict[str, dict[str, EvalResult]], k: int, path: Path) -> None:
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, results in runs.items():
        far = results["2^24"]
        bits = sorted(far.by["bits"], key=int)
        x = [int(b) for b in bits]
        line = axes[0].plot(x, [float(share(far, "bits", b)) for b in bits], "o-", label=name)
        colour = line[0].get_color()
        axes[0].plot(x, [float(share(far, "bits", b, True)) for b in bits], "s--", color=colour,
                     alpha=0.6, label=f"{name} verified@{k}")  # fmt: skip
        test = results["test"]
        octaves = sorted(test.by["smallest_factor"], key=lambda v: int(v.split("-")[0]))
        axes[1].plot(range(len(octaves)), [float(share(test, "smallest_factor", o))
                     for o in octaves], "o-", color=colour, label=name)  # fmt: skip
        axes[1].plot(range(len(octaves)), [float(share(test, "smallest_factor", o, True))
                     for o in octaves], "s--", color=colour, alpha=0.6)  # fmt: skip
        axes[1].set_xticks(range(len(octaves)), octaves, rotation=45, fontsize=8)
        counts = sorted(test.steps_by["operands"], key=int)
        axes[2].plot([int(c) for c in counts], [test.steps_by["operands"][c] for c in counts],
                     "o-", color=colour, label=name)  # fmt: skip
    axes[0].axvline(16.5, color="grey", lw=0.8)
    axes[0].set(xlabel="bits of n (trained: <= 16)", ylabel="exact", title="accuracy vs log2(n)")
    axes[1].set(xlabel="smallest prime factor", ylabel="exact", title="accuracy vs smallest factor")
    axes[2].set(xlabel="prime factors (with multiplicity)", ylabel="scratchpad states written",
                title="thinking steps vs prime factors")  # fmt: skip
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=2000, help="problems per split")
    parser.add_argument("--k", type=int, default=16, help="candidates of verified search")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "images" /
                        "factorization.png")  # fmt: skip
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {run.name: measure(run, args.n, args.k) for run in args.runs}
    lines = table(runs, args.k)
    print("\n".join(lines))
    plot(runs, args.k, args.plot)
    print(f"plot: {args.plot}")
    if args.record:
        record("Factorisation: greedy top-1 and verified@k", lines, f"; plot {args.plot.name}")


if __name__ == "__main__":
    main()
