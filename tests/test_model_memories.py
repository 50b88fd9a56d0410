"""The Th1nker with its latent memory swapped for a library memory (`model.memory`)."""

import pytest
import torch
from helpers import TINY_MODEL, arithmetic_batch, run_model

from th1nker.config_files import ConfigError
from th1nker.memory.dnc import DNCMemory
from th1nker.memory.stepped import SteppedMemory
from th1nker.models.config import ModelConfig
from th1nker.models.th1nker import Th1nker, deep_supervision_loss
from th1nker.train.experiment import load_experiment

SPECS = {
    "dnc": {"type": "dnc", "slots": 8, "width": 8, "reads": 2},
    "ntm": {"type": "ntm", "slots": 8, "width": 8, "reads": 1, "writes": 2},
    "attention": {"type": "attention", "slots": 8, "width": 8, "reads": 3, "flags": {"top_k": 2}},
    "neural": {"type": "neural", "width": 8, "hidden": 16},
    "episodic": {"type": "episodic", "slots": 6, "width": 8, "reads": 2, "top_k": 2},
    "persistent": {"type": "persistent", "slots": 3, "width": 8},
    "mixture": {
        "type": "mixture",
        "width": 8,
        "router": {"top_k": 2},
        "experts": [{"type": "neural", "width": 4, "hidden": 8}, {"type": "episodic", "width": 4}],
    },  # fmt: skip
}
TOKENS = {"dnc": 2, "ntm": 1, "attention": 3, "neural": 1, "episodic": 2, "persistent": 3,
          "mixture": 1}  # fmt: skip


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
    assert state["values"].shape == (4, TOKENS[kind], TINY_MODEL["dim"])


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
    assert isinstance(m.memory.memory, DNCMemory) and state["memory"]["usage"].sum() > 0


@pytest.mark.parametrize("truncate", [False, True])
def test_truncation_cuts_the_memory_state_too(truncate):
    b = arithmetic_batch(4)
    m = model(SPECS["ntm"], truncate_gradients=truncate)
    (first, _), (second, _) = m.think(b["input_ids"], b["input_mask"], torch.full((4,), 2))
    (grad,) = torch.autograd.grad(second.sum(), first, allow_unused=True)
    assert (grad is None) == truncate


def test_bad_memory_specs_name_the_field_and_the_allowed_values():
    def error(*overrides: str) -> str:
        with pytest.raises(ConfigError) as caught:
            load_experiment(None, list(overrides))
        return str(caught.value)

    assert (
        "model.memory: type 'lstm' is not a known memory type; known: attention, dnc, episodic, mixture, network, neural, ntm, persistent"
        in (error("model.memory={type: lstm}"))
    )
    assert "model.memory.slotz: unknown field; allowed: type, slots, width" in error(
        "model.memory={type: dnc, slotz: 3}"
    )
    assert "model.memory.slots: Input should be greater than or equal to 1" in error(
        "model.memory={type: ntm, slots: 0}"
    )
    assert "model.memory.flags.beta" in error("model.memory={type: dnc, flags: {beta: big}}")
    assert "model.memory.flags.top_k: unknown field" in error(
        "model.memory={type: dnc, flags: {top_k: 2}}"
    )  # a flag of the attention memory, which the DNC would ignore: refused by name


def test_shipped_swapped_memory_config_loads():
    experiment = load_experiment("configs/experiments/dnc_memory.yaml", [])
    assert experiment.model.memory.type == "dnc" and experiment.model.memory.reads == 4
