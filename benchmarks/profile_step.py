"""Where a training step's time goes: torch.profiler over optimiser steps of an experiment.

    python benchmarks/profile_step.py [--config FILE] [key=value ...] [--steps 20] [--top 25]

Builds the experiment's model and data exactly as `th1nker train` does (the Trainer), runs
`--warmup` steps, then profiles `--steps` more and prints the operators with the most CPU time
(self time, so nothing is counted twice) and the time per step in the loss's forward, backward
and the optimiser.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from torch.profiler import ProfilerActivity, profile, record_function

from th1nker.tasks.stream import make_loader
from th1nker.train.experiment import load_experiment
from th1nker.train.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="key=value experiment overrides")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        overrides = ["train.tensorboard=false", f"train.runs_dir={runs}", *args.overrides]
        config = load_experiment(args.config, overrides)
        trainer = Trainer(config, Path(runs) / "run", Console(stderr=True))
        train = config.train
        traced = train.supervision == "trace" or trainer.model.needs_trace
        batches = iter(
            make_loader(config.task, "train", train.batch_size, config.seed, trace=traced)
        )
        model, optimizer = trainer.model, trainer.plan.outer.optimizer

        def step() -> None:
            batch = trainer._supervised(next(batches))
            with record_function("loss forward"):
                loss, _, trainer.carry = trainer.loss_fn(batch, trainer.carry)
                loss.item()
            with record_function("backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with record_function("optimiser"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
                optimizer.step()

        for _ in range(args.warmup):
            step()
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(args.steps):
                step()
        wall = (time.perf_counter() - start) / args.steps
    events = profiler.key_averages()
    print(
        f"{config.name}: {wall * 1000:.1f} ms per step (profiled), batch {config.train.batch_size}"
    )
    for name in ("loss forward", "backward", "optimiser"):
        event = next(e for e in events if e.key == name)
        print(f"  {name:<13} {event.cpu_time_total / args.steps / 1000:7.1f} ms per step")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
