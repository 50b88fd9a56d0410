"""The training loop: AdamW + warm-up/cosine, periodic evaluation, atomic checkpoints, exact
resume, NaN guard, and the final report. The loss is the model family's (`Family.loss`).

A run directory holds `config.yaml` (the resolved experiment), `metrics.jsonl`, `tensorboard/`,
`checkpoints/` and, at the end, `report/`. Batch i of the training stream is seeded by
(seed, i), so a resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from th1nker.config_files import ConfigError
from th1nker.memory.routing import RoutingLog
from th1nker.models.family import LossStats, build_model
from th1nker.models.supervision import answer_only
from th1nker.tasks.stream import ProblemStream, make_loader
from th1nker.train.checkpoint import (
    CONFIG,
    load_checkpoint,
    load_trainer_state,
    newest_intact_checkpoint,
    save_training_checkpoint,
    training_checkpoints,
)
from th1nker.train.device import autocast, pick_device
from th1nker.train.evaluate import evaluate
from th1nker.train.experiment import ExperimentConfig, load_experiment
from th1nker.train.losses import LossPlan, with_inner_losses
from th1nker.train.metrics import MetricsLog
from th1nker.train.report import final_evaluation
from th1nker.train.storage import RunLock, storage_error, write_atomically


def _empty_window() -> dict:
    """Sums over the optimiser steps since the last log line (saved with checkpoints, so that a
    resumed run logs the same averages as an uninterrupted one)."""
    return {
        "loss": 0.0, "per_step": None, "correct": 0, "rows": 0, "tokens": 0, "n": 0,
        "thinking_steps": 0, "terms": {}, "router": {},
    }  # fmt: skip


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept as it was."""


def new_run_dir(config: ExperimentConfig) -> Path:
    """A new, empty RUNS_DIR/NAME-YYYYMMDD-HHMMSS (with a suffix if that name is taken)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(config.train.runs_dir) / f"{config.name}-{stamp}"
    run_dir, n = base, 1
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                run_dir, n = base.with_name(f"{base.name}-{n}"), n + 1
    except OSError as error:
        raise storage_error(error, "create the run directory (train.runs_dir)") from None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}  {task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


class Trainer:
    """One run: build everything (or restore it from the checkpoint `resume_from`), then
    `run()`. `start_training` and `resume_training` also lock the run directory."""

    def __init__(
        self,
        config: ExperimentConfig,
        run_dir: Path,
        console: Console,
        resume_from: Path | None = None,
    ):
        self.config, self.run_dir, self.console = config, run_dir, console
        train = config.train
        if train.threads is not None:
            torch.set_num_threads(train.threads)
        self.device = pick_device(train.device)
        torch.manual_seed(config.seed)
        self.model = build_model(config.model)
        refusal = type(self.model).compile_refusal
        if train.compile and refusal is not None:
            raise ConfigError(f"train.compile: not for {config.model.kind} models: {refusal}")
        self.step, self.elapsed = 0, 0.0
        self.stage = 0  # the task curriculum's current stage (task.curriculum)
        self.carry = None  # what the family keeps between steps (the TRM: problems in flight)
        self.window = _empty_window()
        state = None
        if resume_from is not None:
            _, self.model, _ = load_checkpoint(resume_from)
            state = load_trainer_state(resume_from)
            self.step, self.elapsed = state["step"], state["elapsed"]
            self.stage = state.get("stage", 0)
            self.carry = state.get("carry")
            self.window = {**self.window, **state.get("window", {})}
        self.model.to(self.device).train()
        if self.carry is not None:
            self.carry = {k: v.to(self.device) for k, v in self.carry.items()}
        self.routing = RoutingLog(self.model)
        routed = bool(self.routing)
        self.plan = LossPlan(self.model, config.losses, config.optim, train.max_steps, routed)
        config = self.config = with_inner_losses(config, self.model)
        if state is not None:
            self.plan.outer.optimizer.load_state_dict(state["optimizer"])
            for group, saved in zip(self.plan.groups[1:], state.get("slow", []), strict=False):
                group.load_state_dict(saved)
            torch.set_rng_state(state["rng"]["torch"])
            if torch.cuda.is_available() and state["rng"]["cuda"] is not None:
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(run_dir / CONFIG, config.to_yaml())
            self.metrics = MetricsLog(run_dir, self.step, train.tensorboard)
        except OSError as error:
            raise storage_error(error, f"write the run directory {run_dir}") from None
        if self.metrics.torn:
            console.print(
                f"{escape(str(self.metrics.path))}: dropped a torn last line (the run was stopped)"
            )
        self.loss_fn = torch.compile(self.model.loss) if train.compile else self.model.loss

    def _trainer_state(self) -> dict:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "optimizer": self.plan.outer.optimizer.state_dict(),
            "slow": [group.state_dict() for group in self.plan.groups[1:]],
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda},
            "carry": None if self.carry is None else {k: v.cpu() for k, v in self.carry.items()},
            "window": self.window,
            "stage": self.stage,
        }

    def checkpoint(self) -> Path:
        return save_training_checkpoint(
            self.run_dir,
            self.step,
            self.model,
            self.config,
            self._trainer_state(),
            self.config.train.keep_checkpoints,
        )

    def _supervised(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch as `train.supervision` teaches it: without the trace states (final), or with
        the share `trace_share(step)` of rows keeping theirs (the others: the answer only). The
        rows are drawn from (seed, step), so a resumed run draws the same ones."""
        train = self.config.train
        if "trace_ids" not in batch:
            return batch
        if train.supervision == "final":
            return {k: v for k, v in batch.items() if k not in ("trace_ids", "trace_mask")}
        share = train.trace_share(self.step)
        if share >= 1:
            return batch
        rng = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step)
        keep = torch.rand(len(batch["trace_len"]), generator=rng) < share
        return answer_only(batch, ~keep)

    def _train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, LossStats]:
        """One optimiser step: the loss value and the family's statistics (`Family.loss`). A
        loss without a graph (a family with nothing to learn by gradient) skips the update."""
        batch = self._supervised(batch)
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with autocast(self.device, self.config.train.precision), self.routing.collecting():
            loss, stats, self.carry = self.loss_fn(batch, self.carry)
        terms = {"task": loss, **self.routing.losses()}
        values = {name: term.item() for name, term in terms.items()}
        loss_value = values["task"]
        if not all(math.isfinite(v) for v in values.values()):
            loss_value = next(v for v in values.values() if not math.isfinite(v))
            saved = training_checkpoints(self.run_dir)
            kept = (
                f"the last good checkpoint, {saved[0]}, is kept"
                if saved
                else "no checkpoint was written yet (train.checkpoint_every "
                f"{self.config.train.checkpoint_every})"
            )
            raise TrainingDiverged(
                f"loss became {loss_value} at step {self.step + 1}; stopped without saving; "
                f"{kept} (try a lower optim.lr or optim.grad_clip, or precision=fp32)"
            )
        self.plan.step(terms, self.step)
        self.step += 1
        for name, value in values.items():
            self.window["terms"][name] = self.window["terms"].get(name, 0.0) + value
        for name, seen in self.routing.stats().items():
            total = self.window["router"].setdefault(name, {"load": None, "entropy": 0.0})
            total["entropy"] += seen["entropy"]
            total["load"] = seen["load"] if total["load"] is None else [
                a + b for a, b in zip(total["load"], seen["load"], strict=True)
            ]  # fmt: skip
        return loss_value, stats

    def _batches(self, traced: bool) -> Iterator[dict[str, torch.Tensor]]:
        """The training batches from batch number `step` on: of the whole task, or with a
        curriculum of the current stage's mix (`TaskScheme.stage_mix`), read at every batch
        (batch i of a stage is the same in every run, so a resumed run draws what it would
        have)."""
        train, task = self.config.train, self.config.task
        if task.curriculum is None:
            yield from make_loader(
                task, "train", train.batch_size, self.config.seed, train.num_workers,
                start=self.step, trace=traced,
            )  # fmt: skip
            return
        streams: dict[int, ProblemStream] = {}
        while True:
            if self.stage not in streams:
                mix = task.stage_mix(self.stage)
                streams[self.stage] = ProblemStream(
                    mix, "train", train.batch_size, self.config.seed
                )
            yield streams[self.stage].batch(self.step).to_tensors(traced)

    def _promote(self) -> None:
        """With a curriculum, evaluate the current stage's val problems; move to the next
        stage if they reach `promote_at` (recorded in metrics.jsonl as kind `stage`)."""
        curriculum, ev = self.config.task.curriculum, self.config.eval
        if curriculum is None or self.stage == len(curriculum.stages) - 1:
            return
        scheme = self.config.task.at_stage(self.stage)
        accuracy = evaluate(self.model, scheme, "val", ev.examples, ev.batch_size, ev.seed).accuracy
        promoted = accuracy >= curriculum.promote_at
        self.metrics.write(
            {"kind": "stage", "step": self.step, "stage": self.stage, "accuracy": accuracy,
             "promoted": promoted, "elapsed": self.elapsed}
        )  # fmt: skip
        if promoted:
            self.stage += 1
            self.console.print(
                f"step {self.step:>6}  stage {self.stage - 1} val exact match {accuracy:.4f} "
                f">= {curriculum.promote_at}: curriculum stage {self.stage} of "
                f"{len(curriculum.stages) - 1}"
            )

    def _validate(self) -> float:
        ev = self.config.eval
        result = evaluate(self.model, self.config.task, "val", ev.examples, ev.batch_size, ev.seed)
        record = {"kind": "eval", "split": "val", "step": self.step}
        record |= {"accuracy": result.accuracy, "elapsed": self.elapsed}
        for group, table in result.by.items():
            record[f"by_{group}"] = {value: c / t for value, (c, t) in table.items()}
        self.metrics.write(record)
        return result.accuracy

    def show_losses(self) -> None:
        """Print the loss hierarchy when it is more than one task loss on every parameter."""
        inner = self.config.losses.inner or []
        if len(self.plan.groups) == 1 and not self.routing and not inner:
            return
        table = Table(
            "loss", "terms", "updates", "every", "lr", title="losses", title_justify="left"
        )
        for row in inner:
            table.add_row("inner", row["loss"], f"{row['module']}: {row['updates']}",
                          row["every"], row["rate"])  # fmt: skip
        for row in self.plan.describe():
            table.add_row(row["loss"], row["terms"], f"{row['parameters']:,} parameters",
                          f"{row['every']} batch(es)", f"{row['lr']:g}")  # fmt: skip
        self.console.print(table)

    def run(self) -> dict:
        """Train to max_steps (or the time cap), checkpointing; then evaluate and report."""
        train = self.config.train
        self.show_losses()
        traced = train.supervision == "trace" or self.model.needs_trace
        loader = self._batches(traced)
        window = self.window
        window_start, timed_rows, timed_tokens = time.perf_counter(), 0, 0  # for the rates
        last_saved = self.step
        stopped_early = False
        with _progress(self.console) as progress:
            bar = progress.add_task(
                "train", total=train.max_steps, completed=self.step, loss=0.0, acc=0.0, rate=""
            )
            for batch in loader:
                if self.step >= train.max_steps:
                    break
                tick = time.perf_counter()
                loss, stats = self._train_step(batch)
                self.elapsed += time.perf_counter() - tick
                per_step = stats.per_step
                window["per_step"] = (
                    per_step if window["per_step"] is None
                    else [a + b for a, b in zip(window["per_step"], per_step, strict=False)]
                )  # fmt: skip
                window["loss"] += loss
                window["correct"] += stats.correct
                window["rows"] += stats.rows
                window["tokens"] += stats.tokens
                window["thinking_steps"] += stats.thinking_steps
                window["n"] += 1
                timed_rows, timed_tokens = timed_rows + stats.rows, timed_tokens + stats.tokens
                if self.step % train.log_every == 0 or self.step == train.max_steps:
                    seconds = time.perf_counter() - window_start
                    record = {
                        "kind": "train",
                        "step": self.step,
                        "loss": window["loss"] / window["n"],
                        "loss_per_step": [v / window["n"] for v in window["per_step"]],
                        "accuracy": window["correct"] / max(window["rows"], 1),
                        "mean_steps": window["thinking_steps"] / max(window["rows"], 1),
                        "lr": self.plan.outer.lr(self.step - 1),
                        "examples_per_s": timed_rows / seconds,  # finished problems
                        "tokens_per_s": timed_tokens / seconds,
                        "elapsed": self.elapsed,
                    }
                    n = window["n"]
                    if len(window["terms"]) > 1:  # more than the task loss
                        record["terms"] = {k: v / n for k, v in window["terms"].items()}
                    if window["router"]:
                        record["router"] = {
                            name: {"load": [v / n for v in r["load"]], "entropy": r["entropy"] / n}
                            for name, r in window["router"].items()
                        }
                    if train.supervision == "trace":
                        record["trace_share"] = train.trace_share(self.step - 1)
                    if self.config.task.curriculum is not None:
                        record["stage"] = self.stage
                    self.metrics.write(record)
                    progress.update(
                        bar, completed=self.step, loss=record["loss"], acc=record["accuracy"],
                        rate=f"{record['examples_per_s']:.0f} ex/s",
                    )  # fmt: skip
                    self.window = window = _empty_window()
                    window_start, timed_rows, timed_tokens = time.perf_counter(), 0, 0
                solved = False
                if self.step % train.eval_every == 0:
                    self._promote()
                    accuracy = self._validate()
                    self.console.print(
                        f"step {self.step:>6}  loss {loss:.4f}  val exact match {accuracy:.4f}  "
                        f"({self.elapsed / 60:.1f} min training)"
                    )
                    solved = train.stop_at_accuracy is not None and (
                        accuracy >= train.stop_at_accuracy
                    )
                if self.step % train.checkpoint_every == 0:
                    self.checkpoint()
                    last_saved = self.step
                if solved:
                    stopped_early = True
                    self.console.print(f"val exact match reached {train.stop_at_accuracy}")
                    break
                if train.max_minutes is not None and self.elapsed > 60 * train.max_minutes:
                    stopped_early = True
                    self.console.print(f"time cap of {train.max_minutes} min reached")
                    break
        if last_saved != self.step:
            self.checkpoint()
        summary = final_evaluation(self.model, self.config, self.run_dir, self.console)
        summary.update(steps=self.step, training_minutes=self.elapsed / 60, stopped=stopped_early)
        self.metrics.close()
        return summary


def start_training(config: ExperimentConfig, console: Console) -> dict:
    """A new run of `config`; returns the summary of its final evaluation."""
    run_dir = new_run_dir(config)
    with RunLock(run_dir):
        trainer = Trainer(config, run_dir, console)
        console.print(
            f"run directory: {escape(str(run_dir))}"
        )  # now it holds its config: --resume works
        return trainer.run()


def resume_training(run_dir: Path, console: Console) -> dict:
    """Continue a run from its newest intact checkpoint (from the start if it has none yet),
    with the run's own resolved config. Damaged checkpoints are set aside, and said so."""
    if not (run_dir / CONFIG).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG})")
    config = load_experiment(run_dir / CONFIG)
    with RunLock(run_dir):
        directory, damaged = newest_intact_checkpoint(run_dir)
        for aside, reason in damaged:
            console.print(
                f"[yellow]damaged checkpoint[/]: {escape(reason)}; moved to {escape(str(aside))}"
            )
        if directory is None and damaged:
            raise ConfigError(f"{run_dir} has no intact checkpoint left to resume from")
        if directory is None:
            console.print(
                f"resuming {escape(str(run_dir))} from the start: it has no checkpoint yet"
            )
        else:
            console.print(f"resuming {escape(str(run_dir))} from {directory.name}")
        return Trainer(config, run_dir, console, resume_from=directory).run()
