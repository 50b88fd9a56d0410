"""Data generation speed: problems/s and tokens/s per generator and per scheme, on one core.

    python benchmarks/bench_data.py [--batch-size 1024] [--seconds 3] [--record]

Each row draws whole batches through `ProblemStream` (generation, bases, overflow handling, the
split hash and the conversion to torch tensors) on one thread. --record appends the table to
benchmarks/RESULTS.md with the machine and command.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from common import ROOT, record  # noqa: E402

from th1nker.tasks.scheme import TaskScheme, load_scheme  # noqa: E402
from th1nker.tasks.stream import ProblemStream  # noqa: E402


def _scheme(generator: dict, **fields) -> TaskScheme:
    return TaskScheme.model_validate({"generators": [generator], **fields})


CASES = {
    "addition, 2 operands of 10 digits": _scheme(
        {"type": "arithmetic", "operands": 2, "operations": "+", "digits": 10}
    ),
    "default scheme (add/sub 1-10 digits)": TaskScheme(),
    "arithmetic +-* 2-9 operands, 1-10 digits": _scheme(
        {"type": "arithmetic", "operands": [2, 9], "operations": "+-*"}, max_length=1024
    ),
    "arithmetic all operators, bases 2..256": load_scheme(
        ROOT / "configs/tasks/all_operators.yaml"
    ),
    "factorize 2-9 primes up to 1e9": _scheme(
        {"type": "factorize", "factors": [2, 9], "max_number": 10**9}, max_length=1024
    ),
    "base_convert 1-10 digits, bases 2/4/10/16": _scheme(
        {"type": "base_convert"}, bases={"values": [2, 4, 10, 16]}, max_length=1024
    ),
    "copy 1-10 symbols": _scheme({"type": "copy"}),
    "recall 2-6 items of 3": _scheme({"type": "recall"}),
    "mixed scheme (configs/tasks/mixed.yaml)": load_scheme(ROOT / "configs/tasks/mixed.yaml"),
}


def measure(scheme: TaskScheme, batch_size: int, seconds: float) -> tuple[float, float]:
    """(problems/s, tokens/s) over whole batches for about `seconds`."""
    stream = ProblemStream(scheme, "train", batch_size=batch_size, seed=0)
    stream.batch(0)  # warm caches (prime sieve)
    problems = tokens = 0
    start = time.perf_counter()
    index = 1
    while time.perf_counter() - start < seconds:
        batch = stream.batch(index).to_tensors()
        index += 1
        problems += batch["input_ids"].shape[0]
        tokens += int(batch["input_mask"].sum() + batch["target_mask"].sum())
    elapsed = time.perf_counter() - start
    return problems / elapsed, tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [
        f"| case (batch {args.batch_size}) | problems/s | tokens/s |",
        "|---|---:|---:|",
    ]
    for name, scheme in CASES.items():
        rate, token_rate = measure(scheme, args.batch_size, args.seconds)
        lines.append(f"| {name} | {rate:,.0f} | {token_rate:,.0f} |")
        print(lines[-1], flush=True)
    if args.record:
        record("Data generation", lines)


if __name__ == "__main__":
    main()
