"""Step time of our DNC against the `dnc` package from PyPI, same sizes, same process.

    pip install --no-deps dnc==1.1.0
    python benchmarks/bench_dnc_speed.py [--batch 32] [--length 20] [--repeats 20] [--record]

Both: LSTM controller (one layer, `hidden` units), `slots` x `width` memory, `reads` read heads,
one write head; forward + backward of a whole sequence, timed alternately (median of `repeats`).
Ratio > 1 means ours is faster.
"""

from __future__ import annotations

import argparse

import torch
from common import median_seconds, record

from th1nker.memory.dnc_network import dnc_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("batch", 32), ("length", 20), ("repeats", 20), ("hidden", 64)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--reads", type=int, default=1)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    from dnc import DNC as ReferenceDNC  # the PyPI package

    torch.manual_seed(0)
    size = 10
    xs = torch.randn(args.batch, args.length, size)
    ours = dnc_network(size, size, args.hidden, "lstm", args.slots, args.width, args.reads, 1)
    reference = ReferenceDNC(
        input_size=size,
        hidden_size=args.hidden,
        rnn_type="lstm",
        num_layers=1,
        num_hidden_layers=1,
        nr_cells=args.slots,
        cell_size=args.width,
        read_heads=args.reads,
        batch_first=True,
        gpu_id=-1,
    )

    def ours_step():
        ours.zero_grad()
        ours.run(xs)[0].sum().backward()

    def reference_step():
        reference.zero_grad()
        output, _ = reference(xs, (None, None, None), reset_experience=True)
        output.sum().backward()

    ours_time, reference_time = median_seconds([ours_step, reference_step], args.repeats)
    lines = [
        "| sizes | ours ms | dnc 1.1.0 ms | speed ratio (theirs / ours) |",
        "|---|---:|---:|---:|",
        f"| batch {args.batch}, length {args.length}, hidden {args.hidden}, {args.slots}x"
        f"{args.width} memory, {args.reads} read head(s) | {ours_time * 1e3:.1f} | "
        f"{reference_time * 1e3:.1f} | {reference_time / ours_time:.2f} |",
    ]
    print("\n".join(lines))
    if args.record:
        record("DNC forward+backward per sequence", lines)


if __name__ == "__main__":
    main()
