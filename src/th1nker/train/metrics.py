"""Metrics of a run: one JSON object per line in `metrics.jsonl`, mirrored to TensorBoard.

Every record has `kind` (train | eval) and `step`. On resume the records after the checkpoint's
step are dropped, so the file always describes one consistent history. A torn last line (the run
was killed, or the disk filled, while it was written) is dropped and reported; a damaged line
anywhere else is an error naming its line number.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from th1nker.config_files import ConfigError
from th1nker.train.storage import storage_error, write_atomically

METRICS = "metrics.jsonl"


def parse_metrics(path: Path) -> tuple[list[dict], bool]:
    """(the records of a metrics file, whether its last line was torn and left out)."""
    if not path.is_file():
        return [], False
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    records, torn = [], False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("not a record with a step")
        except ValueError as error:
            if number == len(lines):  # the last line, without its newline: torn mid-write
                torn = True
                continue
            raise ConfigError(f"{path}, line {number}: not a metrics record ({error})") from None
        records.append(record)
    return records, torn


def read_metrics(run_dir: Path) -> list[dict]:
    return parse_metrics(run_dir / METRICS)[0]


def _scalars(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    """The numbers of a record as TensorBoard tags: nested dicts joined by "/", list items
    numbered from 1 (`loss_per_step` -> loss_per_step/1, router/NAME/load/2, ...)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _scalars(f"{prefix}/{key}", item)
    elif isinstance(value, list):
        for i, item in enumerate(value, start=1):
            yield from _scalars(f"{prefix}/{i}", item)


class MetricsLog:
    """Appends records to RUN/metrics.jsonl and scalars to RUN/tensorboard/, after dropping the
    records later than `start_step` (those of a run's lost future). `torn`: whether a torn last
    line was dropped."""

    def __init__(self, run_dir: Path, start_step: int = 0, tensorboard: bool = True):
        self.path = run_dir / METRICS
        records, self.torn = parse_metrics(self.path)
        kept = [r for r in records if r["step"] <= start_step]
        # a kill now leaves the old or the new file whole
        write_atomically(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self.file = open(self.path, "a")  # noqa: SIM115 (kept open for the run; see close)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import, only when used

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step)

    def write(self, record: dict) -> None:
        """Append `record`; StorageError when the disk refuses (a torn line: dropped on resume)."""
        try:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        except OSError as error:
            raise storage_error(error, f"append to {self.path}") from None
        if self.writer is None:
            return
        prefix = record["kind"] + ("/" + record["split"] if "split" in record else "")
        fields = {k: v for k, v in record.items() if k not in ("kind", "split", "step")}
        for tag, value in _scalars(prefix, fields):
            self.writer.add_scalar(tag, value, record["step"])

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a failed write was already reported
            self.file.close()
        if self.writer is not None:
            self.writer.close()
