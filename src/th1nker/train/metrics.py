"""Metrics of a run: one JSON object per line in `metrics.jsonl`, mirrored to TensorBoard.

Every record has `kind` (train | eval) and `step`. On resume the records after the checkpoint's
step are dropped, so the file always describes one consistent history.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

METRICS = "metrics.jsonl"


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricsLog:
    """Appends records to RUN/metrics.jsonl and scalars to RUN/tensorboard/."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True):
        self.path = run_dir / METRICS
        if resume_step is not None:
            kept = [r for r in read_metrics(run_dir) if r["step"] <= resume_step]
            temporary = self.path.with_name(f".{METRICS}.tmp")
            temporary.write_text("".join(json.dumps(r) + "\n" for r in kept))
            os.replace(temporary, self.path)  # a kill now leaves the old or the new file whole
        self.file = open(self.path, "a")  # noqa: SIM115 (kept open for the run; see close)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import, only when used

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer is None:
            return
        prefix = record["kind"] + ("/" + record["split"] if "split" in record else "")
        for key, value in record.items():
            if isinstance(value, int | float) and key != "step":
                self.writer.add_scalar(f"{prefix}/{key}", value, record["step"])
            elif isinstance(value, list) and key == "loss_per_step":
                for i, v in enumerate(value):
                    self.writer.add_scalar(f"{prefix}/loss_step_{i + 1}", v, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
