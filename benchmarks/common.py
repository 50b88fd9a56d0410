"""What every benchmark needs: the machine's name and appending a table to RESULTS.md."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """CPU model and core count (and the GPU when CUDA is available)."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    text = f"{name}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def record(title: str, lines: list[str], note: str = "") -> None:
    """Append a dated table with the machine, torch's thread count and the exact command to
    benchmarks/RESULTS.md."""
    script = Path(sys.argv[0]).name
    header = (
        f"\n### {title}, {date.today()}\n\n"
        f"Machine: {machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"torch threads: {torch.get_num_threads()}{note}.\nCommand: `python benchmarks/{script} {shlex.join(sys.argv[1:])}`\n\n"
    )
    with open(ROOT / "benchmarks" / "RESULTS.md", "a") as results:
        results.write(header + "\n".join(lines) + "\n")


def median_seconds(steps: list, repeats: int) -> list[float]:
    """Median time of each step, running them in turn (so drift hits all alike)."""
    for step in steps:
        step()  # warm-up
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for step, bucket in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]
