"""Forward + backward time of our neural memory against titans-pytorch's NeuralMemory, same
sizes, same process.

    pip install titans-pytorch==0.5.5      # a separate environment: never a th1nker dependency
    python benchmarks/bench_titans_speed.py [--batch 16] [--length 128] [--chunks 1 8 32] [--record]

Both as the memory layer of benchmarks/bench_mqar.py (ours: x + W_out M(W_in LN(x)); theirs:
NeuralMemory with its own norm and projections), one head, a depth-2 MLP memory of width `dim`
and hidden 2 * dim, momentum and forgetting on; a whole sequence forward and backward, timed
alternately (median of `repeats`). Ratio > 1 means ours is faster.
"""

from __future__ import annotations

import argparse

import torch
from bench_mqar import MEMORIES, MemoryLayer, TitansLayer
from common import median_seconds, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("batch", 16), ("length", 128), ("repeats", 10), ("dim", 64)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.length, args.dim)
    lines = [
        "| sizes | chunk | ours params | theirs params | ours ms | titans-pytorch 0.5.5 ms | "
        "speed ratio (theirs / ours) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for chunk in args.chunks:
        spec = {**MEMORIES["neural"], "width": args.dim, "hidden": 2 * args.dim}
        ours = MemoryLayer({**spec, "chunk_size": chunk}, args.dim)
        theirs = TitansLayer(args.dim, chunk)

        def step(layer):
            return lambda: layer(x).square().mean().backward()

        mine, reference = median_seconds([step(ours), step(theirs)], args.repeats)
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        lines.append(
            f"| batch {args.batch}, length {args.length}, dim {args.dim}, MLP {args.dim}-"
            f"{2 * args.dim}-{args.dim} | {chunk} | {count(ours):,} | {count(theirs):,} | "
            f"{mine * 1000:.1f} | {reference * 1000:.1f} | {reference / mine:.2f} |"
        )
        print(lines[-1], flush=True)
    if args.record:
        record("Neural memory forward+backward per sequence, against titans-pytorch", lines)


if __name__ == "__main__":
    main()
