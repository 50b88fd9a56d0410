"""Trace supervision: each thinking step is taught its state of the algorithm (then the answer),
step budgets follow trace lengths, the trace-to-final schedule moves as configured."""

import json
from pathlib import Path

import pytest
import torch
from helpers import TINY_MODEL, scheme
from rich.console import Console
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.models.config import ModelConfig
from th1nker.models.generation import row_exact_match
from th1nker.models.supervision import answer_only, step_targets
from th1nker.models.th1nker import Th1nker
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import PAD
from th1nker.train.experiment import load_experiment
from th1nker.train.trainer import Trainer

TINY_TRACE = Path(__file__).parents[1] / "configs" / "experiments" / "tiny_trace.yaml"
MULTIPLICATION = [{"type": "arithmetic", "operations": "*", "digits": [1, 3]}]


def traced_batch(n=32, generators=MULTIPLICATION, seed=0):
    stream = ProblemStream(scheme(generators=generators), "train", n, seed)
    problems = stream.batch(0)
    return problems, problems.to_tensors(trace=True)


def test_each_step_is_taught_its_state_then_the_answer():
    problems, batch = traced_batch()
    traces = problems.trace()
    steps = batch["trace_len"] + 1  # one spare step
    targets = step_targets(batch, steps)
    assert targets.ids.shape[0] == int(steps.max())
    for i, trace in enumerate(traces):
        for k in range(int(steps[i])):
            expected = trace[min(k, len(trace) - 1)]
            got = targets.ids[k, i][targets.mask[k, i]].tolist()
            assert got == expected, (i, k)
            assert bool(targets.final[k, i]) == (k >= len(trace) - 1)
        answer, mask = targets.last(steps)
        assert answer[i][mask[i]].tolist() == trace[-1]


def test_a_short_budget_still_ends_on_the_answer():
    problems, batch = traced_batch()
    steps = torch.ones_like(batch["trace_len"])
    targets = step_targets(batch, steps)
    for i, trace in enumerate(problems.trace()):
        assert targets.ids[0, i][targets.mask[0, i]].tolist() == trace[-1]
    assert targets.final.all()


def test_without_traces_every_step_is_taught_the_answer():
    _, batch = traced_batch()
    plain = {k: v for k, v in batch.items() if not k.startswith("trace")}
    targets = step_targets(plain, torch.full_like(batch["trace_len"], 3))
    for k in range(3):
        assert torch.equal(targets.ids[k], batch["target_ids"])
    assert targets.final.all()


def test_answer_only_rows_are_taught_the_answer_at_every_step():
    _, batch = traced_batch()
    rows = torch.arange(32) % 2 == 0
    mixed = answer_only(batch, rows)
    steps = batch["trace_len"] + 1
    targets = step_targets(mixed, steps)
    for i in torch.nonzero(rows).flatten().tolist():
        answer = batch["target_ids"][i][batch["target_mask"][i]].tolist()
        for k in range(int(steps[i])):
            assert targets.ids[k, i][targets.mask[k, i]].tolist() == answer
    assert torch.equal(mixed["trace_ids"][~rows], batch["trace_ids"][~rows])
    assert torch.equal(mixed["trace_len"], batch["trace_len"])  # budgets kept


def test_step_budgets_follow_the_trace_length():
    _, batch = traced_batch()
    config = ModelConfig(**TINY_MODEL, steps_from="trace", spare_steps=2, max_thinking_steps=4)
    steps = Th1nker(config).steps_for(batch)
    assert torch.equal(steps, (batch["trace_len"] + 2).clamp(max=4))
    assert Th1nker(config).needs_trace and not Th1nker(ModelConfig(**TINY_MODEL)).needs_trace


def test_a_tiny_model_overfits_a_fixed_batch_of_traces_step_by_step():
    """Every step's teacher-forced output becomes its own trace state, not the answer."""
    torch.manual_seed(0)
    generators = [{"type": "arithmetic", "operations": "*", "digits": [2, 2]}]
    _, batch = traced_batch(16, generators, seed=3)
    model = Th1nker(
        ModelConfig(**TINY_MODEL, steps_from="trace", max_thinking_steps=3, position_offset=0)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(400):
        loss, _, _ = model.loss(batch, None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    steps = model.steps_for(batch)
    targets = step_targets(batch, steps)
    with torch.no_grad():
        output = model(batch["input_ids"], batch["input_mask"], targets.ids, steps)
    right = row_exact_match(output.logits, targets.ids, targets.mask)  # [steps, batch]
    assert right[0].all() and right[1].all()  # the first partial sum, then the product
    first_state_is_not_the_answer = ~(targets.ids[0] == batch["target_ids"]).all(dim=1)
    assert first_state_is_not_the_answer.any()


def test_the_share_of_traced_rows_fades_as_configured(tmp_path):
    config = load_experiment(TINY_TRACE, [f"train.runs_dir={tmp_path}"])
    assert [config.train.trace_share(s) for s in (0, 10, 20, 30, 40)] == [1, 1, 0.5, 0, 0]
    trainer = Trainer(config, tmp_path / "run", Console(quiet=True))
    _, batch = traced_batch(400)
    trainer.step = 20
    half = trainer._supervised(batch)
    kept = (half["trace_ids"] == batch["trace_ids"]).all(dim=(1, 2))
    has_states = batch["trace_len"] > 1
    share = kept[has_states].float().mean()
    assert 0.4 < share < 0.6
    assert torch.equal(trainer._supervised(batch)["trace_ids"], half["trace_ids"])  # same rows
    trainer.step = 30  # share 0: every row is taught its answer at every step
    none = trainer._supervised(batch)["trace_ids"]
    width = none.shape[2]
    answer = torch.nn.functional.pad(
        batch["target_ids"], (0, width - batch["target_ids"].shape[1]), value=PAD
    )
    assert (none == answer[:, None, :]).all()


def test_final_supervision_drops_the_states_but_keeps_the_budgets(tmp_path):
    config = load_experiment(TINY_TRACE, [f"train.runs_dir={tmp_path}", "train.supervision=final",
                                          "train.trace_fade=null"])  # fmt: skip
    trainer = Trainer(config, tmp_path / "run", Console(quiet=True))
    _, batch = traced_batch()
    final = trainer._supervised(batch)
    assert "trace_ids" not in final and torch.equal(final["trace_len"], batch["trace_len"])


def test_a_trace_stepped_model_evaluates_and_solves(tmp_path):
    runner = CliRunner()
    args = ["train", "--config", str(TINY_TRACE), f"train.runs_dir={tmp_path}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    result = runner.invoke(app, ["solve", "12*34", "7*8", "--checkpoint", str(run), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["steps"] for r in rows] == [3, 2]  # trace length (digits of b) + 1 spare
    metrics = (run / "metrics.jsonl").read_text()
    assert '"trace_share": 0.55' in metrics  # the share of the window's last step, 19


@pytest.mark.parametrize("fade", [[5, 5], [9, 3]])
def test_a_bad_fade_is_refused(fade):
    from th1nker.config_files import ConfigError

    with pytest.raises(ConfigError, match="trace_fade"):
        load_experiment(TINY_TRACE, [f"train.trace_fade={fade}"])
