"""Faults while training: kill -9 at random moments and inside a checkpoint or a metrics record,
a full disk, damaged checkpoints, two processes on one run. After each, the run resumes (or is
refused with one clear line) and ends with the weights and the metrics (record for record, timing
fields aside) of an uninterrupted run.

The runs are real processes (`python -m th1nker train ...`, one thread each, so that interrupted
and uninterrupted runs compute bit for bit alike) except where a fault is injected in-process.
"""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.train import checkpoint as checkpoint_module
from th1nker.train.checkpoint import LATEST, WEIGHTS, find_checkpoint
from th1nker.train.storage import RunLock

TINY = Path(__file__).parents[1] / "configs" / "experiments" / "tiny.yaml"
KILL_INSIDE = Path(__file__).with_name("kill_inside.py")
# 45 steps; checkpoints at 15 and 30 are not on the log grid (10), so a resume starts mid-window
SETTINGS = ["train.max_steps=45", "train.checkpoint_every=15", "train.eval_every=15",
            "train.log_every=10", "train.keep_checkpoints=3", "train.threads=1",
            "eval.examples=16", "eval.final_examples=16", "eval.steps_sweep=[2]",
            "eval.plots=false"]  # fmt: skip
TIMING = {"elapsed", "examples_per_s", "tokens_per_s"}
runner = CliRunner()


def train_process(runs: Path, *args: str, prefix=()) -> subprocess.Popen:
    """`th1nker train` in a new process (a new run in `runs`, or `--resume RUN` in args)."""
    if not args or args[0] != "--resume":
        args = ("--config", str(TINY), *SETTINGS, f"train.runs_dir={runs}", *args)
    command = [*prefix] if prefix else [sys.executable, "-m", "th1nker"]
    return subprocess.Popen(
        [*command, "train", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(find_checkpoint(run) / WEIGHTS)


def history(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def assert_same_run(run: Path, reference: Path) -> None:
    a, b = final_weights(reference), final_weights(run)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    assert history(run) == history(reference)
    assert find_checkpoint(run).name == "step_0000045"
    leftovers = [p.name for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [], leftovers


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("reference")
    code, _, err = finish(train_process(runs))
    assert code == 0, err
    return only_run(runs)


def in_process(args: list[str]):
    """The CLI in this process (for faults injected here); torch's thread count restored."""
    threads = torch.get_num_threads()
    try:
        return runner.invoke(app, args)
    finally:
        torch.set_num_threads(threads)


def resume_until_done(run: Path) -> str:
    """`th1nker train --resume RUN` (in this process, one thread as in the others): its output."""
    result = in_process(["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    return result.output


def test_kill_9_at_random_moments_then_resume(tmp_path, reference):
    """Three kills at random moments of the training (after its first record), each resumed."""
    rng = random.Random(14)
    process = train_process(tmp_path)
    killed = 0
    for _ in range(3):
        while not list(tmp_path.glob("*/metrics.jsonl")) and process.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        killed += process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait()
        run = only_run(tmp_path)
        process = train_process(tmp_path, "--resume", str(run))
    assert finish(process)[0] == 0
    assert killed >= 2  # (a kill after the end would test nothing)
    assert_same_run(only_run(tmp_path), reference)


@pytest.mark.parametrize(("where", "at"), [("checkpoint", 2), ("metrics", 4)])
def test_kill_9_inside_a_checkpoint_or_a_metrics_record(tmp_path, reference, where, at):
    process = train_process(tmp_path, prefix=(sys.executable, str(KILL_INSIDE), where, str(at)))
    code, _, _ = finish(process)
    assert code == -signal.SIGKILL
    run = only_run(tmp_path)
    if where == "metrics":
        assert not (run / "metrics.jsonl").read_text().endswith("\n")  # a torn last line
    else:
        assert list((run / "checkpoints").glob(".step_*.tmp"))  # the half-made checkpoint
    out = resume_until_done(run)
    if where == "metrics":
        assert "dropped a torn last line" in out
    assert_same_run(run, reference)


def test_a_kill_before_the_first_checkpoint_resumes_from_the_start(tmp_path, reference):
    code, out, _ = finish(
        train_process(tmp_path, prefix=(sys.executable, str(KILL_INSIDE), "checkpoint", "1"))
    )
    run = only_run(tmp_path)
    assert code == -signal.SIGKILL
    assert f"run directory: {run}" in out  # announced, and it can be resumed
    assert "from the start: it has no checkpoint yet" in resume_until_done(run)
    assert_same_run(run, reference)


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.output
    return line


def test_a_full_disk_during_a_checkpoint_is_one_line_and_resumes(tmp_path, reference, monkeypatch):
    real_save = torch.save
    calls = []

    def full_on_second_save(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"partial")  # what a full disk leaves
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", full_on_second_save)
    args = ["train", "--config", str(TINY), *SETTINGS, f"train.runs_dir={tmp_path}"]
    line = one_error_line(in_process(args))
    run = only_run(tmp_path)
    assert "cannot write checkpoint" in line and "step_0000030" in line
    assert "no space left on the device" in line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [LATEST, "step_0000015"]
    monkeypatch.undo()
    resume_until_done(run)
    assert_same_run(run, reference)


def test_a_full_disk_in_the_metrics_is_one_line_and_resumes(tmp_path, reference, monkeypatch):
    """The record is cut where the disk filled; the resume drops the torn line."""
    from th1nker.train import metrics

    whole = metrics.MetricsLog.write
    calls = []

    def full_on_fourth_record(self, record):
        calls.append(1)
        if len(calls) == 4:
            real_file = self.file

            class FullDisk:
                def write(self, text):
                    real_file.write(text[:30])
                    real_file.flush()
                    raise OSError(errno.ENOSPC, "No space left on device")

                def flush(self):
                    pass

                def close(self):
                    real_file.close()

            self.file = FullDisk()
        whole(self, record)

    monkeypatch.setattr(metrics.MetricsLog, "write", full_on_fourth_record)
    args = ["train", "--config", str(TINY), *SETTINGS, f"train.runs_dir={tmp_path}"]
    line = one_error_line(in_process(args))
    assert "metrics.jsonl: no space left on the device" in line
    monkeypatch.undo()
    run = only_run(tmp_path)
    assert "dropped a torn last line" in resume_until_done(run)
    assert_same_run(run, reference)


@pytest.fixture(scope="module")
def stopped_at_step_30(tmp_path_factory) -> Path:
    """A run killed (kill -9) while writing its checkpoint of step 45: it has 15 and 30."""
    runs = tmp_path_factory.mktemp("stopped")
    prefix = (sys.executable, str(KILL_INSIDE), "checkpoint", "3")
    assert finish(train_process(runs, prefix=prefix))[0] == -signal.SIGKILL
    run = only_run(runs)
    assert find_checkpoint(run).name == "step_0000030"
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _flip_a_bit(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) * 3 // 4] ^= 0x10
    file.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "damage"),
    [(WEIGHTS, _truncate), (WEIGHTS, _flip_a_bit), ("trainer.pt", _truncate),
     ("config.yaml", _flip_a_bit)],
)  # fmt: skip
def test_a_damaged_checkpoint_is_named_and_resume_falls_back(
    tmp_path, reference, stopped_at_step_30, name, damage
):
    run = copy_of(stopped_at_step_30, tmp_path)
    newest = run / "checkpoints" / "step_0000030"
    damage(newest / name)
    if name != "trainer.pt":  # eval and solve check the files they load
        line = one_error_line(runner.invoke(app, ["eval", str(run), "--n", "4"]))
        assert f"{newest / name} is damaged" in line
        line = one_error_line(runner.invoke(app, ["solve", "1+2", "--checkpoint", str(newest)]))
        assert f"{newest / name} is damaged" in line
    out = " ".join(resume_until_done(run).split())
    assert "damaged checkpoint" in out and "resuming" in out and "from step_0000015" in out
    assert (run / "checkpoints" / "damaged-step_0000030").is_dir()  # kept, set aside
    assert_same_run(run, reference)


def test_a_second_process_on_a_run_is_refused_naming_the_holder(
    tmp_path, reference, stopped_at_step_30
):
    run = copy_of(stopped_at_step_30, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    with RunLock(run):  # as a training process holds it
        result = runner.invoke(app, ["train", "--resume", str(run)])
    line = one_error_line(result)
    assert f"is in use by process {os.getpid()} on " in line and ".lock" in line
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert {p: t for p, t in after.items() if p.name != ".lock"} == {
        p: t for p, t in before.items() if p.name != ".lock"
    }
    # a real other process holds it; kill -9 of the holder releases it
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    code, _, err = finish(train_process(tmp_path, "--resume", str(run)))
    assert code == 2 and f"in use by process {holder.pid} on " in err, err
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    resume_until_done(run)
    assert_same_run(run, reference)


HOLD_LOCK = """
import sys, time
from pathlib import Path
from th1nker.train.storage import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(300)
"""
