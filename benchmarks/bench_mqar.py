"""Multi-query associative recall (Zoology's MQAR) with more pairs than the attention window.

Every model is the same small causal sequence model: token embedding, a windowed self-attention
block (each token sees the last `--window` tokens), a memory layer (the model's only path to
anything older), a second windowed block, and the tied output head. Trained by next-token
prediction on the answer positions of `k1 v1 .. kP vP q1 a1 .. qQ aQ` (tasks/generators/mqar.py),
P drawn per batch from `--train-pairs`, for the same wall-clock budget each; evaluated per query
on held-out problems at each P of `--eval-pairs`.

Models (`--model`):
- `window`: no memory layer, a third windowed block instead (about the same parameter count);
- `full`: the same three blocks with unbounded causal attention (the upper bound: all tokens seen);
- a registered memory type, `neural`, `dnc`, `episodic` or `attention` (read-only learned slots:
  it cannot store pairs at test time), as the memory layer: x + W_out memory(W_in LN(x));
- `titans`: titans-pytorch's NeuralMemory (0.5.5) as the memory layer, at our neural memory's
  sizes; it needs the package (`pip install titans-pytorch==0.5.5` in a separate environment,
  never a dependency of th1nker).

    python benchmarks/bench_mqar.py --model neural --out benchmarks/mqar/neural.json
    python benchmarks/bench_mqar.py --table benchmarks/mqar/*.json --plot docs/images/mqar.png --record
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from common import record
from torch import Tensor, nn

from th1nker.memory.registry import memory_spec
from th1nker.models.attention import Block
from th1nker.tasks.generators import sample_mqar

MEMORIES = {
    "neural": {"type": "neural", "width": 64, "depth": 2, "hidden": 128, "max_grad_norm": 1.0},
    "dnc": {"type": "dnc", "slots": 48, "width": 32, "reads": 2},
    "episodic": {"type": "episodic", "slots": 64, "width": 64, "key_width": 32, "top_k": 1},
    "attention": {"type": "attention", "slots": 48, "width": 64, "key_width": 32},
}
MODELS = ("window", "full", *MEMORIES, "titans")


class MemoryLayer(nn.Module):
    """x + W_out memory(W_in LayerNorm(x)), the memory run over the whole sequence."""

    def __init__(self, spec: dict, dim: int):
        super().__init__()
        self.memory = memory_spec(spec).build()
        self.norm = nn.LayerNorm(dim)
        self.to_memory = nn.Linear(dim, self.memory.interface_size)
        self.from_memory = nn.Linear(self.memory.output_size, dim)

    def forward(self, x: Tensor) -> Tensor:
        interface = self.to_memory(self.norm(x))
        if hasattr(self.memory, "run"):  # a Recurrent memory (the neural one: chunk by chunk)
            reads, _ = self.memory.run(interface)
        else:
            state, steps = self.memory.init_state(x.shape[0], x.device), []
            for t in range(x.shape[1]):
                read, state = self.memory(interface[:, t], state)
                steps.append(read)
            reads = torch.stack(steps, dim=1)
        return x + self.from_memory(reads)


class TitansLayer(nn.Module):
    """titans-pytorch's NeuralMemory (its own norm and projections), residual."""

    def __init__(self, dim: int, chunk_size: int):
        super().__init__()
        from titans_pytorch import NeuralMemory

        self.memory = NeuralMemory(
            dim=dim,
            chunk_size=chunk_size,
            heads=1,
            default_model_kwargs={"depth": 2, "expansion_factor": 2.0},
        )

    def forward(self, x: Tensor) -> Tensor:
        retrieved, _ = self.memory(x)
        return x + retrieved


class SequenceModel(nn.Module):
    """tokens [batch, time] -> logits [batch, time, vocab] (see the module docstring)."""

    def __init__(self, model: str, vocab: int, dim: int, heads: int, window: int, chunk: int):
        super().__init__()
        block = lambda: Block(dim, heads, 0.5, 0.0, True, 0, 4)  # noqa: E731
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList([block(), block()])
        self.window = None if model == "full" else window
        if model in ("window", "full"):
            self.memory = block()
        elif model == "titans":
            self.memory = TitansLayer(dim, chunk)
        else:
            self.memory = MemoryLayer({**MEMORIES[model], **_chunk(model, chunk)}, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        batch, time = tokens.shape
        positions = torch.arange(time, device=tokens.device).expand(batch, -1)
        i = torch.arange(time, device=tokens.device)
        seen = i[:, None] >= i[None, :]
        if self.window is not None:
            seen &= i[:, None] - i[None, :] < self.window
        mask = seen.expand(batch, -1, -1)
        x = self.blocks[0](self.embed(tokens), positions, [], mask)
        if isinstance(self.memory, Block):
            x = self.memory(x, positions, [], mask)
        else:
            x = self.memory(x)
        return self.head(self.norm(self.blocks[1](x, positions, [], mask)))


def _chunk(model: str, chunk: int) -> dict:
    return {"chunk_size": chunk} if model == "neural" else {}


def batch(rng, n: int, pairs: int, queries: int, bits: int) -> tuple[Tensor, Tensor, Tensor]:
    """(inputs [n, T-1], targets [n, T-1], answer mask [n, T-1]) of `pairs`-pair problems."""
    tokens, answers = sample_mqar(rng, n, (pairs, pairs), queries, bits).sequences()
    tokens = torch.from_numpy(tokens)
    return tokens[:, :-1], tokens[:, 1:], torch.from_numpy(answers[:, :-1])


def accuracy(model: SequenceModel, pairs: int, args, n: int = 512) -> float:
    """Share of queries answered right on `n` held-out problems of `pairs` pairs."""
    rng = np.random.default_rng(10_000 + pairs)  # the same problems for every model
    right = total = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, n, 128):
            inputs, targets, answers = batch(
                rng, min(128, n - start), pairs, args.queries, args.bits
            )
            predicted = model(inputs).argmax(-1)
            right += int((predicted == targets)[answers].sum())
            total += int(answers.sum())
    model.train()
    return right / total


def train(args) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    vocab = 2**args.bits
    model = SequenceModel(args.model, vocab, args.dim, args.heads, args.window, args.chunk)
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    low, high = args.train_pairs
    steps, trained, curve = 0, 0.0, []
    last_eval = 0.0
    while trained < 60 * args.minutes:
        tick = time.perf_counter()
        pairs = int(rng.integers(low, high, endpoint=True))
        inputs, targets, answers = batch(rng, args.batch, pairs, args.queries, args.bits)
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits[answers], targets[answers])
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (steps + 1) / 100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
        trained += time.perf_counter() - tick
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"{args.model}: loss {loss.item()} at step {steps}")
        if trained - last_eval >= 60 or trained >= 60 * args.minutes:
            last_eval = trained
            probe = accuracy(model, high, args, n=128)
            curve.append({"step": steps, "minutes": trained / 60, "loss": loss.item(),
                          f"accuracy_{high}": probe})  # fmt: skip
            print(f"{args.model}: step {steps} ({trained / 60:.1f} min) loss {loss.item():.3f} "
                  f"acc@{high} {probe:.3f}", flush=True)  # fmt: skip
    by_pairs = {str(p): accuracy(model, p, args) for p in args.eval_pairs}
    print(f"{args.model}: {by_pairs}", flush=True)
    return {
        "model": args.model, "parameters": parameters, "steps": steps,
        "minutes": trained / 60, "by_pairs": by_pairs, "curve": curve,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "table", "plot")},
    }  # fmt: skip


def table(paths: list[Path], plot: Path | None, save: bool) -> None:
    runs = [json.loads(p.read_text()) for p in paths]
    pairs = list(runs[0]["by_pairs"])
    lines = [
        "| model | parameters | steps | train min | " + " | ".join(f"P={p}" for p in pairs) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(pairs),
    ]
    for run in runs:
        accuracies = " | ".join(f"{run['by_pairs'][p]:.3f}" for p in pairs)
        lines.append(
            f"| {run['model']} | {run['parameters']:,} | {run['steps']} | "
            f"{run['minutes']:.1f} | {accuracies} |"
        )
    print("\n".join(lines))
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 4))
        for run in runs:
            axes.plot([int(p) for p in pairs], list(run["by_pairs"].values()), "o-",
                      label=run["model"])  # fmt: skip
        settings = runs[0]["settings"]
        axes.axvline(settings["window"] / 2, color="grey", ls=":", label="pairs in the window")
        axes.set(xscale="log", xlabel="key/value pairs P", ylabel="query accuracy",
                 title=f"MQAR, window {settings['window']}, {settings['minutes']:g} min each")  # fmt: skip
        axes.set_xticks([int(p) for p in pairs], pairs)
        axes.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(plot, dpi=120)
    if save:
        s = runs[0]["settings"]
        note = (
            f"; dim {s['dim']}, window {s['window']}, batch {s['batch']}, train pairs "
            f"{s['train_pairs']}, {s['queries']} queries, {s['minutes']:g} train-min per model, "
            f"seed {s['seed']}, per-query accuracy on 512 held-out problems per P"
        )
        record("MQAR: recall beyond the attention window", lines, note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument(
        "--chunk",
        type=int,
        default=8,
        help="neural / titans: test-time batch (<= window: a "
        "token reads the memory as of its chunk's start and sees the rest through attention)",
    )
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--train-pairs", type=int, nargs=2, default=[2, 16])
    parser.add_argument("--eval-pairs", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, nargs="+", help="summarize result files")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.table:
        table(args.table, args.plot, args.record)
        return
    if args.model is None:
        parser.error("--model (or --table) is required")
    result = train(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
