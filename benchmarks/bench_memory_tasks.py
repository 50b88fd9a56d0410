"""Memory networks from YAML learning the task language's copy / reverse / recall on 8-bit
vectors, trained by `th1nker train` (the `memory_network` model family): steps and minutes until
every held-out sequence is right, and accuracy on longer (ood) ones.

    python benchmarks/bench_memory_tasks.py --network configs/memory/dnc.yaml --task copy
    python benchmarks/bench_memory_tasks.py --network configs/memory/ntm.yaml --task recall
        [--max-minutes 20] [--batch 32] [--lr 1e-3] [--eval-every 200] [--pause 1] [--seed 0]
        [--plot-heads heads.png] [--run DIR] [--final 1000] [--threads 1] [--record]

This is a thin driver: it builds the experiment (the task, `model: {kind: memory_network,
network: ...}`, Adam without weight decay at a constant rate, gradients clipped at 10), runs the
trainer, which stops at the first evaluation (every `--eval-every` steps, on 1000 val problems)
with every sequence right, and prints a table: exact match (every symbol and the answer's end
right) and bit error rate on `--final` held-out (test) and ood problems, per length or number of
items. `--run DIR` trains in DIR, or resumes it if it has a checkpoint (`--max-minutes` counts
all sessions). The same run is `th1nker train --config configs/experiments/dnc_copy.yaml` (or
ntm_copy, ntm_recall). `--plot-heads` draws, for one held-out problem of the largest size, where
every read and write head looks at each step, next to the input and the output bits.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import record
from rich.console import Console

from th1nker.memory.heads import HeadMemory
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import N_DIGITS
from th1nker.train.checkpoint import CONFIG, load_checkpoint
from th1nker.train.experiment import load_experiment
from th1nker.train.storage import RunLock
from th1nker.train.trainer import Trainer, resume_training

SCHEMES = {
    "copy": "{type: copy, length: [1, 10], ood: {length: [11, 20]}}",
    "reverse": "{type: reverse, length: [1, 10], ood: {length: [11, 20]}}",
    "recall": "{type: recall, items: [2, 6], item_len: 3, ood: {items: [7, 10]}}",
}


def experiment_overrides(args) -> list[str]:
    return [
        f"name={args.task}", f"seed={args.seed}", f"task.name={args.task}",
        f"task.generators=[{SCHEMES[args.task]}]", "model={kind: memory_network, network: "
        f"{args.network}, pause: {args.pause}}}", f"optim.lr={args.lr}",
        "optim.weight_decay=0", "optim.betas=[0.9, 0.999]", "optim.warmup_steps=0",
        "optim.min_lr_ratio=1", "optim.grad_clip=10", f"train.batch_size={args.batch}",
        "train.max_steps=1000000", f"train.max_minutes={args.max_minutes}",
        f"train.eval_every={args.eval_every}", f"train.checkpoint_every={args.eval_every}",
        "train.stop_at_accuracy=1.0", "eval.examples=1000", f"eval.final_examples={args.final}",
        "eval.steps_sweep=[]", "train.tensorboard=false", f"train.threads={args.threads}",
    ]  # fmt: skip


@torch.no_grad()
def held_out(model, scheme, split: str, n: int, seed: int):
    """(share right, bit error rate, share right per size) on `n` problems of `split`."""
    batch = ProblemStream(scheme, split, n, seed).batch(0).to_tensors()
    targets, mask = batch["target_ids"], batch["target_mask"]
    out = model.generate(batch["input_ids"], batch["input_mask"], torch.ones(n, dtype=torch.long),
                         targets.shape[1])  # fmt: skip
    answers = out.answers[0]
    right = ((answers == targets) | ~mask).all(1)
    symbols = mask & (targets < N_DIGITS)
    differ = torch.where(answers < N_DIGITS, answers ^ targets, 255)  # not a symbol: all wrong
    wrong_bits = sum(int(((differ >> b) & 1)[symbols].sum()) for b in range(8))
    size = batch["digits"]
    by_size = {int(k): float(right[size == k].float().mean()) for k in size.unique()}
    return float(right.float().mean()), wrong_bits / (8 * int(symbols.sum())), by_size


@torch.no_grad()
def plot_heads(model, scheme, path: str) -> None:
    """Input, read/write weightings of every head (slots x steps) and output bits of the
    held-out problem with the most items (or symbols), stepped one input at a time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch = ProblemStream(scheme, "test", 250, 1).batch(0).to_tensors()
    row = int(batch["digits"].argmax())
    ids, mask = batch["input_ids"][row : row + 1], batch["input_mask"][row : row + 1]
    inputs = model.encode(ids, mask, batch["target_mask"][row : row + 1].sum(1))
    network, outputs = model.network, []
    memories = [n for n, b in network.blocks.items() if isinstance(b, HeadMemory)]
    weights = {(n, kind): [] for n in memories for kind in ("write_weights", "read_weights")}
    state = network.init_state(1)
    for t in range(inputs.shape[1]):
        out, state = network(inputs[:, t], state)
        outputs.append(out[0])
        for name, kind in weights:
            weights[name, kind].append(state["modules"][name][kind][0])  # [heads, slots]
    panels = [("input", inputs[0]), *((f"{n} {k.split('_')[0]}", torch.stack(w).flatten(1))
              for (n, k), w in weights.items()),
              ("output", (torch.stack(outputs) > 0).float() * inputs[0, :, -1:])]  # fmt: skip
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
    parser.add_argument("--pause", type=int, default=0, help="delimiter steps before the answer")
    parser.add_argument("--plot-heads", default=None, help="write a head-weighting plot here")
    parser.add_argument("--run", default=None, help="run directory (resumed if it exists)")
    parser.add_argument("--final", type=int, default=1000, help="problems of the final table")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    console = Console()
    start = time.perf_counter()
    run = Path(args.run) if args.run else None
    if run is not None and (run / CONFIG).is_file():
        summary = resume_training(run, console)
    else:
        config = load_experiment(None, experiment_overrides(args))
        run = run or Path("runs") / f"bench_{args.task}_{int(time.time())}"
        run.mkdir(parents=True, exist_ok=True)
        with RunLock(run):
            summary = Trainer(config, run, console).run()
    config, model, _ = load_checkpoint(run)
    perfect, bit_errors, test_by_size = held_out(model, config.task, "test", args.final, 1)
    ood, ood_bits, ood_by_size = held_out(model, config.task, "ood", args.final, 1)
    hardest = max(ood_by_size)
    by_size = test_by_size | ood_by_size
    key = "items" if args.task == "recall" else "length"
    task = args.task + (f" (pause {args.pause})" if args.pause else "")
    lines = [
        "| network | task | parameters | steps (batch) | train min | held-out perfect | "
        "held-out bit errors | ood perfect | ood bit errors | ood perfect at the hardest | "
        "wall min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.network} | {task} | {sum(p.numel() for p in model.parameters()):,} | "
        f"{summary['steps']} ({config.train.batch_size}) | {summary['training_minutes']:.1f} | "
        f"{perfect:.3f} | {bit_errors:.5f} | {ood:.3f} | {ood_bits:.5f} | "
        f"{ood_by_size[hardest]:.3f} (at {hardest}) | {(time.perf_counter() - start) / 60:.1f} |",
        "",
        f"| perfect by {key} | " + " | ".join(map(str, by_size)) + " |",
        "|---|" + "---:|" * len(by_size),
        "| share | " + " | ".join(f"{v:.3f}" for v in by_size.values()) + " |",
    ]
    print("\n".join(lines))
    solved = "solved" if summary["stopped"] and perfect == 1.0 else "not solved"
    print(f"run {run}; {solved}; final numbers on {args.final} held-out and ood problems")
    if args.plot_heads:
        plot_heads(model, config.task, args.plot_heads)
    if args.record:
        record("Memory networks on memory tasks (th1nker train)", lines)


if __name__ == "__main__":
    main()
