"""Memory networks from YAML learning the task language's copy / reverse / recall on 8-bit
vectors: steps and minutes until held-out sequences have 0 bit errors, and accuracy on longer
(ood) ones.

    python benchmarks/bench_memory_tasks.py --network configs/memory/dnc.yaml --task copy
    python benchmarks/bench_memory_tasks.py --network configs/memory/ntm.yaml --task recall
        [--max-minutes 20] [--batch 32] [--lr 1e-3] [--eval-every 200] [--curriculum]
        [--pause 1] [--plot-heads heads.png] [--checkpoint run.pt] [--final-batches 4] [--record]

A problem of the task language (e.g. `task:copy s1 .. sL =`, answer `s1 .. sL`) becomes a
sequence of vectors: one step per input token (8 bits of a symbol, or a one-hot flag for the
task marker, `blank` and `=`), then one step per answer symbol with an "answer now" flag, where the
network's 8 outputs are read as bits (binary cross-entropy). Held-out problems come from the
scheme's test split, longer ones from its ood split. With `--curriculum`, training starts at the
smallest length (or number of items) and the range grows by one whenever 95% of held-out problems
of the current range are perfect; the final numbers are always on the full range.
`--checkpoint FILE` saves the network, optimiser and progress there (atomically) at every
evaluation and continues from it when it exists (`--max-minutes` counts all sessions; `--lr`
replaces the saved rate, so a resumed run can decay it; `--pause` must match). `--pause N` puts N
steps with the delimiter flag between the query and the answer (the NTM paper's recall sequences
end the query with a delimiter).
`--plot-heads` draws, for one held-out problem of the largest size, where every read and write
head of the network's memories looks at each step, next to the input and the output bits.
Training stops at the first evaluation (every `--eval-every` steps, on 1000 held-out sequences)
with 0 bit errors; the final table is on `--final-batches` x 250 held-out and ood sequences, with
the share of perfect sequences per length (or number of items).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from common import record

from th1nker.memory.heads import HeadMemory
from th1nker.memory.network import load_network
from th1nker.tasks.scheme import load_scheme
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import BLANK, EQUALS, N_DIGITS, TASK_COPY, TASK_RECALL, TASK_REVERSE

BITS = 8
FLAGS = (TASK_COPY, TASK_REVERSE, TASK_RECALL, BLANK, EQUALS)
INPUT_SIZE = BITS + len(FLAGS) + 1  # + the "answer now" flag
SCHEMES = {
    "copy": {"type": "copy", "length": [1, 10], "ood": {"length": [11, 20]}},
    "reverse": {"type": "reverse", "length": [1, 10], "ood": {"length": [11, 20]}},
    "recall": {"type": "recall", "items": [2, 6], "item_len": 3, "ood": {"items": [7, 10]}},
}


def size_key(task: str) -> str:
    """The scheme field that sets a problem's size: items for recall, length otherwise."""
    return "items" if task == "recall" else "length"


def scheme_for(task: str, upper: int | None = None):
    """The task's scheme; with `upper`, its size range (`size_key`) cut at `upper`."""
    spec = dict(SCHEMES[task])
    if upper is not None:
        key = size_key(task)
        spec[key] = [spec[key][0], upper]
    return load_scheme(None, [f"generators=[{spec}]", "name=" + task])


def to_sequences(batch: dict[str, torch.Tensor], pause: int = 0):
    """(inputs [n, T, INPUT_SIZE], targets [n, T, 8], answer mask [n, T]) of a token batch;
    `pause` steps with the `blank` (delimiter) flag between the input and the answer."""
    ids, in_len = batch["input_ids"], batch["input_mask"].sum(1)
    out_len = batch["target_mask"].sum(1) - 1  # without eos
    n, steps = len(ids), int((in_len + pause + out_len).max())
    inputs, targets = torch.zeros(n, steps, INPUT_SIZE), torch.zeros(n, steps, BITS)
    answer = torch.zeros(n, steps, dtype=torch.bool)
    bit_values = 2 ** torch.arange(BITS)
    for t in range(ids.shape[1]):
        token = ids[:, t]
        present = t < in_len
        digit = present & (token < N_DIGITS)
        inputs[digit, t, :BITS] = ((token[digit, None] & bit_values) > 0).float()
        for k, flag in enumerate(FLAGS):
            inputs[present & (token == flag), t, BITS + k] = 1
    for j in range(pause):
        inputs[torch.arange(n), in_len + j, BITS + FLAGS.index(BLANK)] = 1
    in_len = in_len + pause
    for j in range(int(out_len.max())):
        rows = torch.nonzero(j < out_len).squeeze(1)
        t = in_len[rows] + j
        inputs[rows, t, -1] = 1
        answer[rows, t] = True
        symbol = batch["target_ids"][rows, j]
        targets[rows, t] = ((symbol[:, None] & bit_values) > 0).float()
    return inputs, targets, answer


@torch.no_grad()
def evaluate(
    network, stream: ProblemStream, batches: int, pause: int = 0
) -> tuple[float, float, dict[int, float]]:
    """(share of sequences with 0 bit errors, bit error rate, that share per size: length, or
    items for recall)."""
    perfect, wrong_bits, all_bits, size = [], 0, 0, []
    for index in range(batches):
        batch = stream.batch(index).to_tensors()
        inputs, targets, answer = to_sequences(batch, pause)
        wrong = ((network.run(inputs) > 0).float() != targets) & answer[..., None]
        perfect.append(wrong.sum((1, 2)) == 0)
        size.append(batch["digits"])
        wrong_bits += int(wrong.sum())
        all_bits += int(answer.sum()) * BITS
    perfect, size = torch.cat(perfect).float(), torch.cat(size)
    by_size = {int(k): float(perfect[size == k].mean()) for k in size.unique()}
    return float(perfect.mean()), wrong_bits / all_bits, by_size


def save_atomically(path: str, network, optimizer, progress: dict) -> None:
    """Network and optimiser state and `progress` to `path`, via a temporary file and a rename."""
    temporary = f"{path}.tmp"
    torch.save({"network": network.state_dict(), "optimizer": optimizer.state_dict(), **progress},
               temporary)  # fmt: skip
    os.replace(temporary, path)


@torch.no_grad()
def plot_heads(network, stream: ProblemStream, path: str, pause: int = 0) -> None:
    """Input, read/write weightings of every head (slots x steps) and output bits of the first
    held-out problem with the most items, stepped one input at a time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch = stream.batch(0).to_tensors()
    row = int(batch["digits"].argmax())
    inputs, targets, answer = (x[row : row + 1] for x in to_sequences(batch, pause))
    memories = [m for m in network.modules() if isinstance(m, HeadMemory)]
    heads = [(f"{kind} {i}", h) for m in memories for kind, group in
             (("write", m.writers), ("read", m.readers)) for i, h in enumerate(group)]  # fmt: skip
    weights, outputs = {name: [] for name, _ in heads}, []
    network.init_state(1)
    for t in range(inputs.shape[1]):
        outputs.append(network(inputs[:, t])[0])
        for name, head in heads:
            weights[name].append(head.state["weights"][0])
    output = (torch.stack(outputs) > 0).float() * answer[0, :, None]
    panels = [("input", inputs[0]), *((n, torch.stack(w)) for n, w in weights.items()),
              ("target", targets[0]), ("output", output)]  # fmt: skip
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 1.2 + 1.6 * len(panels)))
    for axis, (name, values) in zip(axes, panels, strict=True):
        axis.imshow(values.T, aspect="auto", cmap="Greys", interpolation="nearest")
        axis.set_ylabel(name)
    axes[-1].set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", required=True)
    parser.add_argument("--task", choices=sorted(SCHEMES), default="copy")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-minutes", type=float, default=20)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--curriculum", action="store_true")
    parser.add_argument("--pause", type=int, default=0, help="delimiter steps before the answer")
    parser.add_argument("--plot-heads", default=None, help="write a head-weighting plot here")
    parser.add_argument("--checkpoint", default=None, help="save to / resume from this file")
    parser.add_argument("--final-batches", type=int, default=4, help="of 250, for the last table")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    scheme = scheme_for(args.task)
    key = size_key(args.task)
    low, high = SCHEMES[args.task][key]
    upper = low if args.curriculum else high
    network = load_network(args.network, [f"input_size={INPUT_SIZE}", f"output_size={BITS}"])
    optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
    training, step, stream_seed, solved = 0.0, 0, args.seed, None
    if args.checkpoint and Path(args.checkpoint).exists():
        saved = torch.load(args.checkpoint)
        if saved.get("pause", args.pause) != args.pause:
            parser.error(
                f"--pause {args.pause}: {args.checkpoint} was trained with {saved['pause']}"
            )
        network.load_state_dict(saved["network"])
        optimizer.load_state_dict(saved["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = args.lr  # the saved run's rate is replaced: decay by resuming
        training, step, upper, stream_seed = (
            saved[k] for k in ("training", "step", "upper", "seed")
        )
        solved = saved.get("solved")
        print(f"resumed from {args.checkpoint} at step {step} ({training / 60:.1f} min)")
    train = ProblemStream(scheme_for(args.task, upper), "train", args.batch, stream_seed)
    current = ProblemStream(scheme_for(args.task, upper), "test", 250, args.seed + 1)
    test = ProblemStream(scheme, "test", 250, args.seed + 1)
    ood = ProblemStream(scheme, "ood", 250, args.seed + 1)
    start = time.perf_counter()
    while solved is None and training < 60 * args.max_minutes:
        tick = time.perf_counter()
        inputs, targets, answer = to_sequences(train.batch(step).to_tensors(), args.pause)
        logits = network.run(inputs)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[answer], targets[answer])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 10.0)
        optimizer.step()
        step += 1
        training += time.perf_counter() - tick
        if step % args.eval_every == 0:
            perfect, bit_errors, _ = evaluate(network, test, 4, args.pause)
            print(f"step {step} ({training / 60:.1f} min) loss {loss.item():.4f} held-out: "
                  f"{perfect:.3f} perfect, bit error rate {bit_errors:.5f}", flush=True)  # fmt: skip
            if perfect == 1.0:
                solved = (step, training / 60)
            elif upper < high and evaluate(network, current, 4, args.pause)[0] >= 0.95:
                upper += 1
                print(f"curriculum: {key} up to {upper}", flush=True)
                train = ProblemStream(scheme_for(args.task, upper), "train", args.batch, step)
                current = ProblemStream(scheme_for(args.task, upper), "test", 250, args.seed + 1)
                stream_seed = step
            if args.checkpoint:
                progress = {"training": training, "step": step, "upper": upper, "seed": stream_seed,
                            "pause": args.pause, "solved": solved}  # fmt: skip
                save_atomically(args.checkpoint, network, optimizer, progress)
    perfect, bit_errors, test_by_size = evaluate(network, test, args.final_batches, args.pause)
    ood_perfect, ood_bits, ood_by_size = evaluate(network, ood, args.final_batches, args.pause)
    hardest = max(ood_by_size)
    task = args.task + (f" (pause {args.pause})" if args.pause else "")
    by_size = test_by_size | ood_by_size
    lines = [
        "| network | task | parameters | steps (batch) | train min | held-out perfect | "
        "held-out bit errors | ood perfect | ood bit errors | ood perfect at the hardest | "
        "wall min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.network} | {task} | {sum(p.numel() for p in network.parameters()):,} | "
        f"{step} ({args.batch}) | {training / 60:.1f} | {perfect:.3f} | {bit_errors:.5f} | "
        f"{ood_perfect:.3f} | {ood_bits:.5f} | {ood_by_size[hardest]:.3f} (at {hardest}) | "
        f"{(time.perf_counter() - start) / 60:.1f} |",
        "",
        f"| perfect by {key} | " + " | ".join(map(str, by_size)) + " |",
        "|---|" + "---:|" * len(by_size),
        "| share | " + " | ".join(f"{v:.3f}" for v in by_size.values()) + " |",
    ]
    print("\n".join(lines))
    if args.plot_heads:
        plot_heads(network, test, args.plot_heads, args.pause)
    print(f"final numbers on {250 * args.final_batches} held-out and as many ood sequences")
    if solved:
        print(f"reached 0 bit errors on 1000 held-out sequences at step {solved[0]} "
              f"({solved[1]:.1f} min)")  # fmt: skip
    else:
        print("not solved in time")
    if args.record:
        record("Memory networks on memory tasks", lines)


if __name__ == "__main__":
    main()
