"""Curricula: stages replace the generators' ranges, batches mix in earlier stages, promotion
moves the stage (logged, checkpointed, reported), and a resumed run draws what it would have."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import kill_at_step_27_and_resume, scheme
from rich.console import Console

from th1nker.config_files import ConfigError
from th1nker.tasks.scheme import SchemeError, load_scheme
from th1nker.tasks.stream import ProblemStream
from th1nker.train import trainer as trainer_module
from th1nker.train.checkpoint import find_checkpoint, load_trainer_state
from th1nker.train.experiment import load_experiment
from th1nker.train.trainer import Trainer

TINY = Path(__file__).parents[1] / "configs" / "experiments" / "tiny_curriculum.yaml"
QUIET = Console(quiet=True)
STAGES = {"stages": [{"digits": [1, 1]}, {"digits": [2, 2]}, {"digits": [3, 3]}]}


def staged(**curriculum):
    return scheme(
        generators=[{"type": "arithmetic", "operations": "+-", "digits": [1, 3]}],
        curriculum={**STAGES, **curriculum},
    )


def test_a_stage_replaces_the_ranges_of_the_generators_that_have_them():
    task = scheme(
        generators=[
            {"type": "arithmetic", "operands": [2, 4], "digits": [1, 5]},
            {"type": "copy", "length": [1, 8]},
        ],
        curriculum={"stages": [{"digits": [1, 2], "operands": [2, 2]}, {"length": [1, 4]}]},
    )
    first, second = task.at_stage(0), task.at_stage(1)
    assert first.generators[0].digits == (1, 2) and first.generators[0].operands == (2, 2)
    assert first.generators[1].length == (1, 8)  # copy has no digits: unchanged
    assert second.generators[0].digits == (1, 5) and second.generators[1].length == (1, 4)
    assert first.curriculum is None and first.splits == task.splits


@pytest.mark.parametrize(
    "stages, message",
    [
        ([{"digits": [1, 11]}, {"digits": [1, 3]}], r"stages.0.digits \[1, 11\] must lie within"),
        ([{"length": [1, 2]}, {"digits": [1, 3]}], "stages.0.length: no generator"),
        ([{}, {"digits": [1, 3]}], "stages.0: a stage changes at least one of digits"),
        ([{"digits": [1, 3]}], "at least 2 items"),
    ],
)
def test_a_bad_stage_is_refused_with_its_field_named(stages, message):
    with pytest.raises(SchemeError, match=message):
        load_scheme(None, [f"curriculum={json.dumps({'stages': stages})}"])


def test_later_stages_keep_the_review_share_of_earlier_ones_in_their_batches():
    task = staged(review=0.3)
    assert [g.weight for g in task.stage_mix(0).generators] == [1.0]
    mix = task.stage_mix(2)
    assert [g.digits for g in mix.generators] == [(3, 3), (1, 1), (2, 2)]
    assert np.allclose([g.weight for g in mix.generators], [0.7, 0.15, 0.15])
    digits = ProblemStream(mix, "train", 4000, 0).batch(0).digits
    share = np.mean(digits < 3)
    assert 0.27 < share < 0.33 and set(digits.tolist()) == {1, 2, 3}
    none = staged(review=0.0).stage_mix(2)
    assert [g.digits for g in none.generators] == [(3, 3)]


def test_a_curriculum_needs_batches_drawn_in_the_training_process():
    with pytest.raises(ConfigError, match="train.num_workers must be 0 with a task curriculum"):
        load_experiment(TINY, ["train.num_workers=1"])


@pytest.fixture
def passing_stage_checks(monkeypatch):
    """Every check of a curriculum stage passes (a tiny model learns nothing in 40 steps); the
    whole task's evaluations stay real."""
    real = trainer_module.evaluate

    def evaluate(model, task, split, *args, **kwargs):
        result = real(model, task, split, *args, **kwargs)
        if task.name == "add_sub_3_staged" and task.curriculum is None:  # a stage's scheme
            return dataclasses.replace(result, correct=result.total)
        return result

    monkeypatch.setattr(trainer_module, "evaluate", evaluate)


def test_promotion_moves_the_stage_and_is_logged_checkpointed_and_reported(
    tmp_path, passing_stage_checks
):
    config = load_experiment(TINY, [f"train.runs_dir={tmp_path}"])
    Trainer(config, tmp_path / "run", QUIET).run()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    checks = [(r["step"], r["stage"]) for r in records if r["kind"] == "stage"]
    assert checks == [(10, 0), (20, 1), (30, 2)]  # the last stage is never checked
    assert [r["stage"] for r in records if r["kind"] == "train"] == [0, 1, 2, 3]
    assert load_trainer_state(find_checkpoint(tmp_path / "run"))["stage"] == 3
    report = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "| 2 | digits [2, 3] | 20 |" in report and "| 3 | digits [1, 3] | 30 |" in report


def test_without_promotion_training_stays_on_the_first_stage(tmp_path):
    config = load_experiment(TINY, [f"train.runs_dir={tmp_path}", "train.max_steps=20"])
    trainer = Trainer(config, tmp_path / "run", QUIET)
    drawn = []
    original = trainer._train_step

    def record(batch):
        drawn.append(batch["digits"].clone())
        return original(batch)

    trainer._train_step = record
    trainer.run()
    assert torch.cat(drawn).max() == 1 and trainer.stage == 0


def test_resume_mid_curriculum_equals_the_uninterrupted_run(
    tmp_path, monkeypatch, passing_stage_checks
):
    config = load_experiment(TINY, [f"train.runs_dir={tmp_path}"])
    kill_at_step_27_and_resume(config, tmp_path, monkeypatch)
    killed = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").open()]
    resumed_stages = [r["stage"] for r in killed if r["kind"] == "train"]
    assert resumed_stages == [0, 1, 2, 3]  # resumed at step 20 in stage 2, promoted at 30
