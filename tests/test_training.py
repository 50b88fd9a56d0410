"""Training end to end on the tiny experiment: run directory, checkpoints, exact resume, NaN guard,
save -> load identity."""

import errno
from pathlib import Path

import pytest
import torch
from helpers import kill_at_step_27_and_resume
from rich.console import Console
from safetensors.torch import load_file

from th1nker.config_files import ConfigError
from th1nker.train import checkpoint as checkpoint_module
from th1nker.train.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from th1nker.train.experiment import ExperimentConfig, load_experiment
from th1nker.train.storage import StorageError
from th1nker.train.trainer import Trainer, TrainingDiverged

TINY = Path(__file__).parents[1] / "configs" / "experiments" / "tiny.yaml"
QUIET = Console(quiet=True)


def tiny(tmp_path: Path, *overrides: str) -> ExperimentConfig:
    return load_experiment(TINY, [f"train.runs_dir={tmp_path}", *overrides])


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(find_checkpoint(run_dir) / "model.safetensors")


def test_a_run_writes_config_metrics_checkpoints_and_report(tmp_path):
    config = tiny(tmp_path)
    summary = Trainer(config, tmp_path / "run", QUIET).run()
    run = tmp_path / "run"
    assert load_experiment(run / "config.yaml") == config
    assert (run / "metrics.jsonl").read_text().count('"kind": "train"') == 4
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == [
        "step_0000020",
        "step_0000040",
    ]
    for name in ("report.md", "loss.png", "accuracy_vs_digits.png", "accuracy_vs_steps.png",
                 "steps_vs_difficulty.png"):  # fmt: skip
        assert (run / "report" / name).stat().st_size > 0
    assert set(summary) >= {"test_accuracy", "ood_accuracy", "steps", "training_minutes"}
    assert 0 <= summary["test_accuracy"] <= 1 and summary["steps"] == 40


@pytest.mark.parametrize("experiment", ["tiny", "tiny_trm", "tiny_trace", "tiny_scratchpad"])
def test_resume_after_a_kill_equals_the_uninterrupted_run(tmp_path, monkeypatch, experiment):
    """Also for the TRM, whose problems in flight (the ACT carry) are part of the checkpoint,
    under trace supervision fading out (the rows taught traces are drawn from the step), and for
    the scratchpad decoder."""
    whole = load_experiment(TINY.with_name(f"{experiment}.yaml"), [f"train.runs_dir={tmp_path}"])
    kill_at_step_27_and_resume(whole, tmp_path, monkeypatch)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    config = tiny(tmp_path)
    from th1nker.models import th1nker as th1nker_module

    real_loss = th1nker_module.deep_supervision_loss

    calls: list[int] = []

    def nan_from_step_26(output, target_ids, target_mask):
        calls.append(1)
        loss, per_step = real_loss(output, target_ids, target_mask)
        return (loss * float("nan") if len(calls) > 25 else loss), per_step

    monkeypatch.setattr(th1nker_module, "deep_supervision_loss", nan_from_step_26)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="step 26") as error:
        Trainer(config, run, QUIET).run()
    assert find_checkpoint(run).name == "step_0000020"
    assert f"the last good checkpoint, {run / 'checkpoints' / 'step_0000020'}, is kept" in str(
        error.value
    )
    load_checkpoint(run)  # still complete and loadable
    calls.clear()
    calls.extend([1] * 30)  # NaN at once: before any checkpoint
    with pytest.raises(TrainingDiverged, match="step 1; .* no checkpoint was written yet"):
        Trainer(config, tmp_path / "early", QUIET).run()


def test_save_then_load_gives_identical_outputs(tmp_path):
    config = tiny(tmp_path)
    torch.manual_seed(3)
    from th1nker.models.th1nker import Th1nker

    model = Th1nker(config.model).eval()
    save_checkpoint(tmp_path / "ckpt", model, config)
    _, loaded, _ = load_checkpoint(tmp_path / "ckpt")
    ids = torch.tensor([[256, 10, 3, 2, 260, 5, 265]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    target = torch.tensor([[8, 2, 275]])
    steps = torch.tensor([2])
    torch.testing.assert_close(
        model(ids, mask, target, steps).logits, loaded(ids, mask, target, steps).logits
    )
    assert loaded.head.weight is loaded.embed.weight  # tied weights stay tied


def test_an_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    config = tiny(tmp_path)
    from th1nker.models.th1nker import Th1nker

    model = Th1nker(config.model)
    checkpoint_module.save_training_checkpoint(tmp_path, 10, model, config, {"step": 10}, 2)

    def crash(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(StorageError, match="step_0000020: no space left on the device"):
        checkpoint_module.save_training_checkpoint(tmp_path, 20, model, config, {"step": 20}, 2)
    assert find_checkpoint(tmp_path).name == "step_0000010"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest",
        "step_0000010",
    ]  # fmt: skip  (no temporary directory left to fill the disk)


def test_missing_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        find_checkpoint(tmp_path / "nope")
    with pytest.raises(ConfigError, match="neither a checkpoint"):
        find_checkpoint(tmp_path)


def test_experiment_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.dimm: unknown field; allowed: kind, dim"):
        load_experiment(None, ["model.dimm=3"])
    with pytest.raises(ConfigError, match=r"optim\.lr: Input should be greater than 0"):
        load_experiment(None, ["optim.lr=-1"])
    with pytest.raises(ConfigError, match="input_cache_size 8 is smaller than task.max_length"):
        load_experiment(None, ["model.input_cache_size=8"])
    with pytest.raises(ConfigError, match=r"task\.generators\.0\.digits"):
        load_experiment(None, ["task.generators.0.digits=[5,1]"])


def test_the_default_experiment_file_is_the_built_in_default():
    path = Path(__file__).parents[1] / "configs" / "experiments" / "default.yaml"
    assert load_experiment(path) == ExperimentConfig()


def test_an_experiment_file_without_task_or_model_takes_the_defaults(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text("seed: 3\n")
    config = load_experiment(path)
    assert config.seed == 3 and config.task == ExperimentConfig().task
    assert config.model == ExperimentConfig().model


def test_a_task_can_be_a_scheme_file():
    mixed = Path(__file__).parents[1] / "configs" / "tasks" / "mixed.yaml"
    config = load_experiment(None, [f"task={mixed}", "model.input_cache_size=1024"])
    assert config.task.name == "mixed"


def test_an_override_of_a_task_file_field_keeps_the_rest_of_the_file():
    experiments = Path(__file__).parents[1] / "configs" / "experiments"
    path = experiments / "factorize_scratchpad.yaml"
    config = load_experiment(path, ["task.bases.values=[30]"])
    plain = load_experiment(path)
    assert config.task.bases.values == [30] and plain.task.bases.values == [10]
    assert config.task.model_dump(exclude={"bases"}) == plain.task.model_dump(exclude={"bases"})
    later = load_experiment(
        experiments / "multiplication_scratchpad.yaml",
        ["task=../tasks/multiplication_4.yaml", "task.max_length=30"],
    )  # a task file named by an override, then one of its fields
    assert later.task.name == "multiplication_4" and later.task.max_length == 30


def test_data_workers_do_not_change_the_run(tmp_path):
    """Batch i is seeded by (seed, i): one worker process trains exactly like none."""
    Trainer(tiny(tmp_path, "train.max_steps=10"), tmp_path / "a", QUIET).run()
    with_worker = tiny(tmp_path, "train.max_steps=10", "train.num_workers=1")
    Trainer(with_worker, tmp_path / "b", QUIET).run()
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[1] / "configs" / "experiments").glob("*.yaml")),
    ids=lambda p: p.stem,
)
def test_every_shipped_experiment_trains(tmp_path, path):
    """Each shipped experiment (memory tasks, swapped memories, ...) runs end to end, shortened."""
    short = [
        f"train.runs_dir={tmp_path}",
        "train.max_steps=3",
        "train.batch_size=8",
        "train.eval_every=3",
        "train.checkpoint_every=3",
        "train.tensorboard=false",
        "eval.examples=16",
        "eval.final_examples=16",
        "eval.steps_sweep=[1]",
        "eval.plots=false",
    ]  # fmt: skip  (plots: test_a_run_writes_config_metrics_checkpoints_and_report)
    if path.stem == "seed_slice":  # GPU size, scratchpads of thousands of tokens: shrink it
        short += ["model.dim=32", "model.n_layers=1"]
    if getattr(load_experiment(path).model, "scratchpad", False):
        short.append("model.max_scratchpad=64")  # an untrained decoder writes until the limit
    summary = Trainer(load_experiment(path, short), tmp_path / "run", QUIET).run()
    assert summary["steps"] == 3 and 0 <= summary["test_accuracy"] <= 1
