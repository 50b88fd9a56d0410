"""Copy a finished run's final checkpoint into the package as a shipped model, with its card.

    python benchmarks/ship_checkpoint.py RUN NAME --summary "..." --command "th1nker train ..."

Writes src/th1nker/pretrained/NAME/: model.safetensors and config.yaml of RUN's latest
checkpoint, card.json (the summary, the command, the run's measured test and ood accuracy by
digits and operands, its training time and machine) and checksums.json. card.md, the card for
people, is written by hand next to it (the script refuses to ship without one).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import ROOT, machine

from th1nker.train.checkpoint import CONFIG, WEIGHTS, find_checkpoint
from th1nker.train.metrics import read_metrics
from th1nker.train.storage import write_checksums


def _by(report: Path, split: str, group: str) -> dict[str, float]:
    counts = json.loads((report / f"eval_{split}.json").read_text())["by"][group]
    return {value: round(row["accuracy"], 4) for value, row in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--summary", required=True, help="one line: what the model answers")
    parser.add_argument("--command", required=True, help="the command that trained it")
    args = parser.parse_args()
    report = args.run / "report"
    summary = json.loads((report / "summary.json").read_text())
    train = [r for r in read_metrics(args.run) if r["kind"] == "train"]
    target = ROOT / "src" / "th1nker" / "pretrained" / args.name
    if not (target / "card.md").is_file():
        raise SystemExit(f"write {target / 'card.md'} first (the card for people)")
    checkpoint = find_checkpoint(args.run)
    for name in (WEIGHTS, CONFIG):
        shutil.copyfile(checkpoint / name, target / name)
    card = {
        "summary": args.summary,
        "command": args.command,
        "checkpoint": checkpoint.name,
        "training_minutes": round(train[-1]["elapsed"] / 60, 1),
        "machine": machine(),
        "test_accuracy": round(summary["test_accuracy"], 4),
        "ood_accuracy": round(summary["ood_accuracy"], 4),
        "test_by_digits": _by(report, "test", "digits"),
        "test_by_operands": _by(report, "test", "operands"),
        "ood_by_digits": _by(report, "ood", "digits"),
        "ood_by_operands": _by(report, "ood", "operands"),
    }
    (target / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    write_checksums(target)
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
