"""The loss hierarchy (train/losses.py) and the routers' losses and statistics in training
(memory/routing.py): each loss updates only its declared parameters, at its declared rate."""

import json
from pathlib import Path

import pytest
import torch
from helpers import kill_at_step_27_and_resume
from rich.console import Console

from th1nker.config_files import ConfigError
from th1nker.memory.mixture import MixtureOfExperts
from th1nker.memory.routing import RoutingLog, router_losses
from th1nker.train.experiment import load_experiment
from th1nker.train.metrics import _scalars
from th1nker.train.trainer import Trainer

TINY = Path(__file__).parents[1] / "configs" / "experiments" / "tiny.yaml"
QUIET = Console(quiet=True)
ROUTED = (
    "model.memory={type: mixture, width: 8, router: {top_k: 1}, experts: "
    "[{type: neural, width: 8, hidden: 8}, {type: episodic, slots: 4, width: 8, key_width: 4}]}"
)
ROUTER = "memory.memory.router.weight"


def routed(tmp_path: Path, *overrides: str):
    return load_experiment(TINY, [f"train.runs_dir={tmp_path}", ROUTED, *overrides])


def slow_router(weight: float = 1.0, every: int = 2, terms: str = "load_balance") -> str:
    return (
        f"losses.slow=[{{name: router, params: ['{ROUTER}'], terms: {{{terms}: {weight}}}, "
        f"every: {every}}}]"
    )


def trainer_after(config, tmp_path: Path, steps: int) -> Trainer:
    """A trainer of `config` after `steps` optimiser steps (no evaluation, no checkpoint)."""
    trainer = Trainer(config, tmp_path, QUIET)
    batches = trainer._batches(traced=False)
    for _ in range(steps):
        trainer._train_step(next(batches))
    return trainer


def params(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def test_a_slow_group_steps_every_k_batches_and_only_on_its_parameters(tmp_path):
    config = routed(tmp_path, slow_router(every=2))
    start = params(Trainer(config, tmp_path / "a", QUIET))
    one = params(trainer_after(config, tmp_path / "b", 1))
    two = params(trainer_after(config, tmp_path / "c", 2))
    assert torch.equal(one[ROUTER], start[ROUTER])  # the outer loss never reaches it
    assert not torch.equal(two[ROUTER], start[ROUTER])  # its own step, after 2 batches
    changed = [n for n in start if not torch.equal(one[n], start[n])]
    assert changed and ROUTER not in changed


def test_a_slow_loss_does_not_leak_into_the_outer_parameters(tmp_path):
    """Two runs whose slow losses differ: identical outer parameters after the first batch (the
    slow gradient went to the router alone, though it would have changed their direction),
    different routers after the second (the slow loss is what trains the router)."""
    light = trainer_after(routed(tmp_path, slow_router(1.0)), tmp_path / "a", 1)
    heavy = trainer_after(routed(tmp_path, slow_router(50.0)), tmp_path / "b", 1)
    for name, value in params(light).items():
        torch.testing.assert_close(value, params(heavy)[name], rtol=0, atol=0, msg=name)
    balance = trainer_after(routed(tmp_path, slow_router()), tmp_path / "c", 2)
    z_loss = trainer_after(routed(tmp_path, slow_router(terms="z_loss")), tmp_path / "d", 2)
    assert not torch.equal(params(balance)[ROUTER], params(z_loss)[ROUTER])


def test_outer_terms_update_only_the_parameters_they_depend_on(tmp_path):
    """With the router's z-loss alone as the outer loss, the answer head and the answer
    decoder get no update; the router does."""
    config = routed(tmp_path, "losses.outer={z_loss: 1.0}")
    start = params(Trainer(config, tmp_path / "a", QUIET))
    after = params(trainer_after(config, tmp_path / "b", 1))
    assert not torch.equal(after[ROUTER], start[ROUTER])
    decoder = [n for n in start if n.startswith(("decoder.", "out_norm."))]
    assert decoder and all(torch.equal(after[n], start[n]) for n in decoder)


def test_router_terms_and_load_reach_metrics_and_the_resolved_config(tmp_path):
    config = routed(tmp_path, "train.max_steps=20")
    Trainer(config, tmp_path / "run", QUIET).run()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    train = [r for r in records if r["kind"] == "train"]
    assert len(train) == 2
    for record in train:
        assert set(record["terms"]) == {"task", "load_balance", "z_loss"}
        assert record["loss"] == record["terms"]["task"]
        load = record["router"]["memory.memory"]["load"]
        assert len(load) == 2 and sum(load) == pytest.approx(1.0)  # top-1: each row once
        assert 0 <= record["router"]["memory.memory"]["entropy"] <= torch.log(torch.tensor(2.0))
    saved = load_experiment(tmp_path / "run" / "config.yaml")
    (inner,) = saved.losses.inner
    assert inner["module"] == "memory.memory.experts.0" and "M(k_t) - v_t" in inner["loss"]
    tags = dict(_scalars("train", {"router": train[0]["router"], "loss_per_step": [1.0, 2.0]}))
    assert set(tags) == {
        "train/router/memory.memory/load/1", "train/router/memory.memory/load/2",
        "train/router/memory.memory/entropy", "train/loss_per_step/1", "train/loss_per_step/2",
    }  # fmt: skip


def test_resume_with_a_slow_group_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    """Killed at step 27 and resumed from step 20, two batches into a slow group's three: its
    gathered gradients are part of the checkpoint (without them this test fails)."""
    config = routed(tmp_path, slow_router(every=3))
    kill_at_step_27_and_resume(config, tmp_path, monkeypatch)


def test_the_routing_log_notes_only_while_collecting():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        MixtureOfExperts(width=8, experts=[{"type": "neural", "width": 4, "hidden": 4}] * 2)
    )
    log = RoutingLog(model)
    moe = model[0]
    out, state = moe(torch.randn(5, 8), moe.init_state(5))
    assert log.losses() == {} and log.stats() == {}
    with log.collecting():
        _, state = moe(torch.randn(5, 8), state)
        _, state2 = moe(torch.randn(5, 8), state)
    expected = (router_losses(state)["z_loss"] + router_losses(state2)["z_loss"]) / 2
    torch.testing.assert_close(log.losses()["z_loss"], expected)
    assert list(log.stats()) == ["0"] and not RoutingLog(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["losses.outer={tsk: 1.0}"], "unknown loss term 'tsk'; allowed: task, load_balance"),
        (["losses.outer={task: -1.0}"], "weight of task must be >= 0"),
        ([ROUTED, slow_router().replace(ROUTER, "nope.*")], r"slow\[0\] \(router\).params"),
        ([slow_router().replace(ROUTER, "*")], "router terms and the model has no router"),
        (
            [ROUTED, "losses.slow=[{name: a, params: ['*'], terms: {task: 1}}, "
             "{name: b, params: ['*'], terms: {task: 1}}]"],
            r"slow\[1\] \(b\).params: \S+ is already in losses.slow\[0\] \(a\)",
        ),
        (
            ["losses.slow=[{name: a, params: ['*'], terms: {task: 1}}, "
             "{name: a, params: ['x'], terms: {task: 1}}]"],
            "slow loss names repeat",
        ),
        (["losses.inner=[{module: x}]"], "losses.inner is derived"),
    ],
)  # fmt: skip
def test_bad_loss_hierarchies_are_refused_by_name(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(load_experiment(TINY, [f"train.runs_dir={tmp_path}", *overrides]), tmp_path, QUIET)
