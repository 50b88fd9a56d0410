"""Which steps of the trial-division trace a scratchpad decoder gets right, teacher-forced.

    python benchmarks/trial_states.py RUN [RUN ...] [--n 1000] [--record]

On the first `n` test problems of each run (a decoder trained on `trace: trial`), every state of
the trace is fed the true states before it, and counts as right when all its tokens are the
argmax. States are grouped by what they compute: `p%r` (the remainder of the cofactor by the
prime p: the divisibility test), `p*q` (a division that came out even: the quotient), and the
answer. By the prime's octave as well, since the remainder by 2, 3 or 5 shows in the last digit
or the digit sum in base 10 and by every p dividing 30 in base 30. A model that computes
remainders of held-out numbers right here but fails greedy decoding loses its way only by
compounding; one that fails here has not learned the test itself.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch
from common import record

from th1nker.models.decoder_only import scratchpad_of
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import EQUALS, MOD, MUL, PAD
from th1nker.train.checkpoint import load_checkpoint
from th1nker.train.device import pick_device


def spans(row: list[int]) -> list[tuple[int, int]]:
    """(start, end) of each state of a scratchpad row: its tokens are row[start:end], and
    row[end] is the `=` or `eos` after it."""
    ends = [i for i, t in enumerate(row) if t == EQUALS] + [sum(t != PAD for t in row) - 1]
    return list(zip([0] + [e + 1 for e in ends[:-1]], ends, strict=True))


def per_state(run: Path, n: int) -> dict[tuple[str, str], list[int]]:
    """(kind, prime octave or '') -> [right, total] over the states of `n` test problems."""
    device = pick_device("auto")
    config, model, _ = load_checkpoint(run, device)
    model.eval()
    stream = ProblemStream(config.task, "test", 250, seed=1234)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for index in range(-(-n // 250)):
        batch = {k: v.to(device) for k, v in stream.batch(index).to_tensors(True).items()}
        target = scratchpad_of(batch)
        prompt, valid = model.prompt(batch["input_ids"], batch["input_mask"])
        offset = torch.zeros(len(target), dtype=torch.long, device=device)
        with torch.no_grad():
            right = model.teacher_forced(prompt, valid, target, offset).argmax(-1) == target
        rows = zip(target.tolist(), right.tolist(), batch["out_base"].tolist(), strict=True)
        for row, ok, base in rows:
            states = spans(row)
            for k, (start, end) in enumerate(states):
                tokens, good = row[start:end], all(ok[start : end + 1])
                kind, octave = "remainder" if MOD in tokens else "quotient", ""
                if k == len(states) - 1:
                    kind = "answer"
                else:
                    prime = tokens[: tokens.index(MOD if kind == "remainder" else MUL)]
                    octave = _octave(prime, base)
                for key in {(kind, ""), (kind, octave)}:
                    counts[key][0] += good
                    counts[key][1] += 1
    return counts


def _octave(digits: list[int], base: int) -> str:
    """`2-3`, `4-7`, ...: the octave of the number written by `digits` (least significant
    first, as the task language writes them)."""
    value = sum(d * base**i for i, d in enumerate(digits))
    j = value.bit_length() - 1
    return f"{2**j}-{2 ** (j + 1) - 1}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    args = parser.parse_args()
    lines = ["| run | state | prime | states | right (teacher-forced) |", "|---|---|---|---|---|"]
    for run in args.runs:
        counts = per_state(run, args.n)
        for (kind, octave), (good, total) in sorted(
            counts.items(), key=lambda item: (item[0][0], _sort_key(item[0][1]))
        ):
            lines.append(
                f"| {run.name} | {kind} | {octave or 'all'} | {total} | {good / total:.3f} |"
            )
    print("\n".join(lines))
    if args.record:
        record("Factorisation: trial-division states right under teacher forcing", lines)


def _sort_key(octave: str) -> int:
    return int(octave.split("-")[0]) if octave else 0


if __name__ == "__main__":
    main()
