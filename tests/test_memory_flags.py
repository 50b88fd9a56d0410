"""The read-out and initialization flags of every memory: normalize, dropout, pass_through, init."""

import pytest
import torch

from th1nker.config_files import ConfigError
from th1nker.memory.attention_memory import AttentionMemory
from th1nker.memory.dnc import DNCMemory
from th1nker.memory.network import Network, NetworkSpec
from th1nker.memory.ntm import NTMMemory

MEMORIES = [DNCMemory, NTMMemory, AttentionMemory]


def step(memory, interface):
    return memory(interface, memory.init_state(interface.shape[0]))[0]


@pytest.mark.parametrize("cls", MEMORIES)
def test_pass_through_appends_the_interface(cls):
    torch.manual_seed(0)
    plain = cls(slots=5, width=3, reads=2)
    through = cls(slots=5, width=3, reads=2, flags={"pass_through": True})
    through.load_state_dict(plain.state_dict())
    interface = torch.randn(4, plain.interface_size)
    out = step(through, interface)
    assert through.output_size == 6 + plain.interface_size == out.shape[1]
    torch.testing.assert_close(out[:, :6], step(plain, interface))
    torch.testing.assert_close(out[:, 6:], interface)


@pytest.mark.parametrize("cls", MEMORIES)
@pytest.mark.parametrize("norm", ["layer", "rms"])
def test_normalize_applies_to_each_read_vector(cls, norm):
    torch.manual_seed(0)
    plain = cls(slots=5, width=8, reads=2)
    normed = cls(slots=5, width=8, reads=2, flags={"normalize": norm})
    normed.load_state_dict(plain.state_dict(), strict=False)  # + the norm's weight (ones)
    interface = torch.randn(3, plain.interface_size) * 5
    reads = step(plain, interface).view(3, 2, 8)
    expected = (
        torch.nn.functional.layer_norm(reads, (8,))
        if norm == "layer"
        else torch.nn.functional.rms_norm(reads, (8,))
    )
    torch.testing.assert_close(step(normed, interface), expected.flatten(1))


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    memory = AttentionMemory(slots=5, width=64, reads=1, flags={"dropout": 0.5})
    interface = torch.randn(2, memory.interface_size)
    assert (step(memory, interface) == 0).float().mean() > 0.3
    memory.eval()
    assert (step(memory, interface) != 0).all()


@pytest.mark.parametrize("cls", [DNCMemory, NTMMemory])
def test_init_sets_the_starting_memory(cls):
    torch.manual_seed(0)
    constant = cls(slots=4, width=3)
    assert (constant.init_state(2)["memory"] == 1e-6).all()
    random = cls(slots=4, width=3, flags={"init": "random"})
    rows = random.init_state(2)["memory"]
    assert not torch.equal(rows[0], rows[1]) and rows.std() < 0.05
    learned = cls(slots=4, width=3, flags={"init": "learned"})
    assert "initial_memory" in dict(learned.named_parameters())
    step(learned, torch.randn(2, learned.interface_size)).sum().backward()
    assert learned.initial_memory.grad is not None and learned.initial_memory.grad.abs().sum() > 0


def test_bad_readout_flags_are_clear_errors():
    with pytest.raises(ConfigError, match="normalize: Input should be 'none', 'layer' or 'rms'"):
        DNCMemory(flags={"normalize": "batch"})
    with pytest.raises(ConfigError, match="dropout"):
        NTMMemory(flags={"dropout": 1.5})
    with pytest.raises(ConfigError, match="flags.init: unknown field"):
        AttentionMemory(flags={"init": "random"})  # its slots are learned: no init


def test_networks_size_projections_by_the_read_out():
    spec = NetworkSpec.model_validate(
        {
            "input_size": 4,
            "output_size": 2,
            "modules": {
                "controller": {"type": "gru", "hidden": 8},
                "memory": {"type": "ntm", "slots": 4, "width": 3, "flags": {"pass_through": True}},
            },
            "connections": [
                {"to": "controller", "from": ["input", "memory"]},
                {"to": "memory", "from": "controller"},
                {"to": "output", "from": "memory"},
            ],
        }
    )
    network = Network(spec)
    assert network.widths["memory"] == 3 + network.blocks["memory"].interface_size
    assert network.run(torch.randn(2, 5, 4))[0].shape == (2, 5, 2)
