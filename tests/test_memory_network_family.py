"""YAML memory networks as a model family: the sequence encoding, the loss's accuracy against
generation, learning, and the errors."""

import pytest
import torch

from th1nker.models.family import build_model
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import BLANK, EOS, EQUALS, N_DIGITS, TASK_COPY
from th1nker.train.experiment import load_experiment

COPY = "configs/experiments/dnc_copy.yaml"


def copy_model(*overrides):
    config = load_experiment(COPY, list(overrides))
    torch.manual_seed(0)
    return config, build_model(config.model)


def test_a_problem_becomes_steps_of_bits_flags_and_answer_now():
    config, model = copy_model("model.pause=2")
    ids = torch.tensor([[TASK_COPY, 5, 130, EQUALS]])
    inputs = model.encode(ids, torch.ones_like(ids, dtype=torch.bool), torch.tensor([3]))
    bits, special = 8, lambda token: 8 + token - N_DIGITS  # noqa: E731
    assert inputs.shape == (1, 4 + 2 + 3, bits + (276 - N_DIGITS) + 1)
    assert inputs[0, 1, :bits].tolist() == [1, 0, 1, 0, 0, 0, 0, 0]  # 5 = 0b101, LSB first
    assert inputs[0, 2, :bits].tolist() == [0, 1, 0, 0, 0, 0, 0, 1]  # 130
    assert inputs[0, 0, special(TASK_COPY)] == 1 and inputs[0, 3, special(EQUALS)] == 1
    assert (inputs[0, 4:6, special(BLANK)] == 1).all()  # the two pause steps: delimiters
    assert inputs[0, 6:, -1].tolist() == [1, 1, 1] and inputs[0, :6, -1].sum() == 0
    assert inputs[0].sum(-1)[6:].tolist() == [1, 1, 1]  # answer steps carry only the flag


def test_teacher_forced_accuracy_equals_generated_exact_match():
    """The outputs do not feed back, so the loss's per-row correctness is what `generate`
    answers; checked on a model trained a little so that some rows are right."""
    small = (
        "model.network={input_size: 1, output_size: 1, modules: {c: {type: lstm, hidden: 16}, "
        "m: {type: dnc, slots: 4, width: 4}}, connections: [{to: c, from: [input, m]}, "
        "{to: m, from: c}, {to: output, from: [c, m]}]}"
    )
    config, model = copy_model(small, "task.generators=[{type: copy, length: [1, 2], bits: 1}]")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    stream = ProblemStream(config.task, "train", 64, 0)
    for i in range(100):
        loss, stats, _ = model.loss(stream.batch(i).to_tensors(), None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    batch = stream.batch(1000).to_tensors()
    with torch.no_grad():
        _, stats, _ = model.loss(batch, None)
    out = model.generate(
        batch["input_ids"], batch["input_mask"], torch.ones(64, dtype=torch.long),
        batch["target_ids"].shape[1] + 2,
    )  # fmt: skip
    width = batch["target_ids"].shape[1]
    right = ((out.answers[0, :, :width] == batch["target_ids"]) | ~batch["target_mask"]).all(1)
    assert stats.correct > 8  # it learned something (by chance: about 1 in 8 of length 1..2)
    assert int(right.sum()) == stats.correct
    assert (out.answers[0][right] == EOS).any(1).all()  # right answers end with eos


def test_answers_the_network_cannot_write_are_a_clear_error():
    config, model = copy_model()
    batch = ProblemStream(load_experiment(None).task, "train", 4, 0).batch(0).to_tensors()
    batch["target_ids"][0, 0] = 260  # '+': not a symbol
    with pytest.raises(ValueError, match="answer token 260 cannot be written"):
        model.loss(batch, None)


def test_the_network_is_resolved_inline_and_compile_is_refused_by_name(tmp_path):
    config = load_experiment(COPY)
    text = config.to_yaml()
    assert "extends" not in text and "hidden: 64" in text  # modules/lstm64.yaml pulled in
    assert config.model.network.input_size == 9  # the YAML's own sizes are kept in the file...
    _, model = copy_model()
    assert model.network.spec.input_size == 8 + 20 + 1  # ...and replaced by the family's
    from rich.console import Console

    from th1nker.config_files import ConfigError
    from th1nker.train.trainer import Trainer

    with pytest.raises(ConfigError, match="train.compile: not for memory_network models"):
        Trainer(load_experiment(COPY, ["train.compile=true"]), tmp_path, Console(quiet=True))
