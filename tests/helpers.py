"""Drawing problems for the tests as plain per-row records; a tiny Th1nker and its batches."""

from __future__ import annotations

import torch

from th1nker.tasks.scheme import TaskScheme, load_scheme
from th1nker.tasks.stream import ProblemStream


def scheme(**fields) -> TaskScheme:
    """A validated scheme from keyword fields over the defaults."""
    return TaskScheme.model_validate({**TaskScheme().model_dump(), **fields})


def records(task_scheme: TaskScheme | list[str], n: int, split="train", seed=0, batch_size=1000):
    """`n` problems as dicts: task, base, out_base, problem, answer, input_ids, target_ids, ..."""
    if isinstance(task_scheme, list):
        task_scheme = load_scheme(None, task_scheme)
    stream = ProblemStream(task_scheme, split, batch_size=min(n, batch_size), seed=seed)
    out, index = [], 0
    while len(out) < n:
        out += stream.batch(index).records(split)
        index += 1
    return out[:n]


TINY_MODEL = {"dim": 32, "n_layers": 1, "n_heads": 2, "latent": 8, "mem_cache_size": 16}


def arithmetic_batch(n=16, seed=0, index=0) -> dict[str, torch.Tensor]:
    """A tensor batch of 1..3-digit additions and subtractions."""
    small = scheme(generators=[{"type": "arithmetic", "operations": "+-", "digits": [1, 3]}])
    return ProblemStream(small, "train", n, seed).batch(index).to_tensors()


def run_model(m, b, steps: int | torch.Tensor = 2):
    """The model's teacher-forced output on batch `b`, every row thinking `steps` steps."""
    steps = torch.full((len(b["task"]),), steps) if isinstance(steps, int) else steps
    return m(b["input_ids"], b["input_mask"], b["target_ids"], steps)


class Stepper:
    """A memory (or network) driven one step at a time in a test; its state is kept here, since
    the module keeps none."""

    def __init__(self, module, batch_size: int = 1):
        self.module, self.state = module, module.init_state(batch_size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out, self.state = self.module(x, self.state)
        return out


def kill_at_step_27_and_resume(config, tmp_path, monkeypatch) -> None:
    """Train `config` whole, then again killed at step 27 and resumed (from its step-20
    checkpoint); assert the final weights are bit-identical and the train history is not
    duplicated (40 steps, a train record every 10)."""
    from rich.console import Console
    from safetensors.torch import load_file

    from th1nker.train.checkpoint import find_checkpoint
    from th1nker.train.trainer import Trainer, resume_training

    quiet = Console(quiet=True)
    Trainer(config, tmp_path / "whole", quiet).run()
    original = Trainer._train_step

    def killed_at_step_27(self, batch):
        if self.step == 27:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", killed_at_step_27)
    try:
        Trainer(config, tmp_path / "killed", quiet).run()
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the run was not killed at step 27")
    assert find_checkpoint(tmp_path / "killed").name == "step_0000020"
    monkeypatch.setattr(Trainer, "_train_step", original)
    resume_training(tmp_path / "killed", quiet)
    a = load_file(find_checkpoint(tmp_path / "whole") / "model.safetensors")
    b = load_file(find_checkpoint(tmp_path / "killed") / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    history = (tmp_path / "killed" / "metrics.jsonl").read_text()
    assert history.count('"kind": "train"') == 4
