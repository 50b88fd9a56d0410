"""The Th1nker with its latent memory swapped for a library memory (`model.memory`)."""

import pytest
import torch
from helpers import TINY_MODEL, arithmetic_batch, run_model

from th1nker.memory.dnc import DNCMemory
from th1nker.memory.stepped import SteppedMemory
from th1nker.models.config import ModelConfig
from th1nker.models.th1nker import Th1nker, deep_supervision_loss
from th1nker.train.experiment import load_experiment

SPECS = {
    "dnc": {"type": "dnc", "slots": 8, "width": 8, "reads": 2},
    "ntm": {"type": "ntm", "slots": 8, "width": 8, "reads": 1, "writes": 2},
    "attention": {"type": "attention", "slots": 8, "width": 8, "reads": 3, "flags": {"top_k": 2}},
}


def model(spec, **fields) -> Th1nker:
    torch.manual_seed(0)
    return Th1nker(ModelConfig(**{**TINY_MODEL, "memory": spec, **fields}))


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_swapped_memory_trains_and_is_read_every_step(kind):
    m = model(SPECS[kind])
    assert isinstance(m.memory, SteppedMemory)
    b = arithmetic_batch(4)
    out = run_model(m, b, 3)
    loss, _ = deep_supervision_loss(out, b["target_ids"], b["target_mask"])
    loss.backward()
    for name, p in m.memory.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    inputs = m.encode_input(b["input_ids"], b["input_mask"])
    latents = m.init_latent(4)
    state = m.init_kv_cache(latents)
    latents, state = m.read_input(latents, inputs, state)
    assert state["values"].shape == (4, SPECS[kind]["reads"], TINY_MODEL["dim"])


def test_each_think_starts_from_a_fresh_memory():
    m = model(SPECS["dnc"]).eval()
    b = arithmetic_batch(4)
    first, second = run_model(m, b).logits, run_model(m, b).logits
    torch.testing.assert_close(first, second)


def test_a_written_memory_changes_what_later_steps_see():
    """The DNC holds the earlier steps' writes: the read tokens of step 2 differ from step 1."""
    m = model(SPECS["dnc"]).eval()
    b = arithmetic_batch(4)
    latents = m.init_latent(4)
    state = m.init_kv_cache(latents)
    inputs = m.encode_input(b["input_ids"], b["input_mask"])
    tokens = []
    for _ in range(2):
        latents, state = m.read_input(latents, inputs, state)
        latents = m.process(latents, state)
        tokens.append(state["values"])
    assert not torch.allclose(tokens[0], tokens[1])
    assert isinstance(m.memory.memory, DNCMemory) and m.memory.memory.state["usage"].sum() > 0


@pytest.mark.parametrize("truncate", [False, True])
def test_truncation_cuts_the_memory_state_too(truncate):
    b = arithmetic_batch(4)
    m = model(SPECS["ntm"], truncate_gradients=truncate)
    (first, _), (second, _) = m.think(b["input_ids"], b["input_mask"], torch.full((4,), 2))
    (grad,) = torch.autograd.grad(second.sum(), first, allow_unused=True)
    assert (grad is None) == truncate


def test_bad_memory_specs_name_the_field_and_the_allowed_values():
    with pytest.raises(ValueError, match="model.memory.type: 'lstm' is not one of dnc, ntm"):
        ModelConfig(memory={"type": "lstm"})
    with pytest.raises(ValueError, match="unknown field.*slotz; dnc takes slots, width"):
        ModelConfig(memory={"type": "dnc", "slotz": 3})
    with pytest.raises(ValueError, match="slots, width, reads, writes must be >= 1"):
        ModelConfig(memory={"type": "ntm", "slots": 0})
    with pytest.raises(ValueError, match="memory flags"):
        ModelConfig(memory={"type": "dnc", "flags": {"beta": "big"}})


def test_shipped_swapped_memory_config_loads():
    experiment = load_experiment("configs/experiments/dnc_memory.yaml", [])
    assert experiment.model.memory["type"] == "dnc"
