"""The contracts: a model family and a memory type added in one file each work everywhere,
through the registries, with no change to train/, solve.py, cli/ or the memory library."""

import json
from pathlib import Path

import pytest
import torch
from helpers import TINY_MODEL, arithmetic_batch, records, run_model
from rich.console import Console
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.config_files import ConfigError
from th1nker.memory.network import Network, NetworkSpec
from th1nker.models.config import ModelConfig
from th1nker.models.th1nker import Th1nker
from th1nker.tasks.scheme import load_scheme
from th1nker.train.checkpoint import find_checkpoint, load_checkpoint, load_trainer_state
from th1nker.train.experiment import load_experiment

HERE = Path(__file__).parent
runner = CliRunner()
TOY = f"""
imports: [toy_family]
name: toy
task: {HERE.parent / "configs" / "experiments" / "tiny.yaml"}
model: {{kind: lookup, width: 16}}
train: {{batch_size: 32, max_steps: 6, log_every: 3, eval_every: 3, checkpoint_every: 3,
         tensorboard: false}}
eval: {{examples: 32, final_examples: 64, batch_size: 32, steps_sweep: []}}
"""


@pytest.fixture
def toy_experiment(tmp_path, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(HERE))
    tiny_task = load_experiment(HERE.parent / "configs" / "experiments" / "tiny.yaml").task
    task_file = tmp_path / "task.yaml"
    task_file.write_text(tiny_task.to_yaml())
    path = tmp_path / "toy.yaml"
    path.write_text(TOY.replace(str(HERE.parent / "configs/experiments/tiny.yaml"), str(task_file)))
    return path


def test_a_family_in_one_file_trains_evaluates_solves_and_resumes_through_the_cli(
    toy_experiment, tmp_path
):
    runs = tmp_path / "runs"
    result = runner.invoke(
        app, ["train", "--config", str(toy_experiment), f"train.runs_dir={runs}"]
    )
    assert result.exit_code == 0, result.output
    (run,) = runs.iterdir()
    _, model, directory = load_checkpoint(run)
    assert type(model).__name__ == "Lookup" and list(model.parameters()) == []
    stored = int(load_trainer_state(directory)["carry"]["stored"])
    assert int(model.stored) == stored > 32  # the table (buffers) and the carry, checkpointed
    # eval: held-out problems were never stored, so the lookup answers none of them
    result = runner.invoke(app, ["eval", str(run), "--n", "40", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total"] == 40
    # solve: a problem it was trained on is answered (and checked) right, an unseen one wrong
    scheme = load_scheme(tmp_path / "task.yaml", [])
    seen = records(scheme, 32, "train", seed=0, batch_size=32)[0]["problem"]
    result = runner.invoke(app, ["solve", seen, "999+999", "--checkpoint", str(run), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [row["correct"] for row in rows] == [True, False]
    # resume: continue the run to 9 steps; the carry (problems stored) goes on from the checkpoint
    config = (run / "config.yaml").read_text().replace("max_steps: 6", "max_steps: 9")
    (run / "config.yaml").write_text(config)
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    state = load_trainer_state(find_checkpoint(run))
    _, resumed, _ = load_checkpoint(run)
    assert state["step"] == 9 and int(state["carry"]["stored"]) == int(resumed.stored)


def test_an_unknown_kind_names_the_registered_families():
    with pytest.raises(
        ConfigError,
        match="kind 'nope' is not a known model; known: compiled, decoder, memory_network, th1nker, trm",
    ):
        load_experiment(None, ["model={kind: nope}"])


def test_compile_is_refused_with_a_reason_for_a_family_that_says_so(toy_experiment, tmp_path):
    from toy_family import Lookup

    from th1nker.train.trainer import Trainer

    Lookup.compile_refusal = "a table lookup has nothing to compile"
    try:
        config = load_experiment(toy_experiment, ["train.compile=true"])
        with pytest.raises(ConfigError, match="train.compile: not for lookup models: a table"):
            Trainer(config, tmp_path / "run", Console(quiet=True))
        assert not (tmp_path / "run").exists()  # refused before anything is written
    finally:
        Lookup.compile_refusal = None


def test_a_memory_in_one_file_works_in_a_network_and_as_the_thinkers_memory(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import toy_memory  # noqa: F401  (registers the `mean` memory)

    spec = NetworkSpec.model_validate(
        {
            "input_size": 4,
            "output_size": 2,
            "modules": {"c": {"type": "lstm", "hidden": 8}, "m": {"type": "mean", "width": 5}},
            "connections": [
                {"to": "c", "from": ["input", "m"]},
                {"to": "m", "from": "c"},
                {"to": "output", "from": ["c", "m"]},
            ],
        }
    )
    out, state = Network(spec).run(torch.randn(3, 6, 4))
    assert out.shape == (3, 6, 2) and state["modules"]["m"]["count"].tolist() == [6.0] * 3
    torch.manual_seed(0)
    config = ModelConfig(**{**TINY_MODEL, "memory": {"type": "mean", "width": 6}})
    model = Th1nker(config)
    b = arithmetic_batch(4)
    out = run_model(model, b, 3)
    out.logits.sum().backward()
    assert model.memory.memory.read_out.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="slots"):  # its own fields, not the DNC's
        ModelConfig(memory={"type": "mean", "slots": 3})
    assert "mean" in load_experiment(None, ["model.memory={type: mean}"]).to_yaml()


def test_old_names_are_refused_with_the_new_one():
    for override, new in [
        ("model.max_steps=4", "max_steps was renamed max_thinking_steps"),
        ("task.generators.0.steps=[2,3]", "steps was renamed operands"),
    ]:
        with pytest.raises(ConfigError, match=new):
            load_experiment(None, [override])
    with pytest.raises(ConfigError, match="steps was renamed factors"):
        load_experiment(None, ["task.generators=[{type: factorize, steps: [2, 3]}]"])


def test_the_default_family_needs_no_kind_and_old_run_configs_still_load():
    config = load_experiment(None, ["model={dim: 32, n_heads: 2}"])
    assert config.model.kind == "th1nker" and config.model.dim == 32
