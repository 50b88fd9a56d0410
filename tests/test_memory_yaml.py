"""Networks from YAML: the shipped examples build and run; graph errors are clear."""

from pathlib import Path

import pytest
import torch

from th1nker.config_files import ConfigError
from th1nker.memory.network import Network, NetworkSpec, load_network
from th1nker.memory.state import reset_state

CONFIGS = Path(__file__).parents[1] / "configs" / "memory"


def spec(modules, connections, **fields) -> NetworkSpec:
    return NetworkSpec.model_validate(
        {
            "input_size": 4,
            "output_size": 3,
            "modules": modules,
            "connections": connections,
            **fields,
        }
    )


LSTM_DNC = {"c": {"type": "lstm", "hidden": 8}, "m": {"type": "dnc", "slots": 4, "width": 3}}
WIRING = [
    {"to": "c", "from": ["input", "m"]},
    {"to": "m", "from": "c"},
    {"to": "output", "from": ["c", "m"]},
]


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.yaml")))
def test_shipped_networks_build_run_and_train_a_step(name):
    torch.manual_seed(0)  # the router of routed_memories sends rows to both of its memories
    network = load_network(CONFIGS / f"{name}.yaml")
    out, _ = network.run(torch.randn(2, 6, 9), detach_every=3)
    assert out.shape == (2, 6, 8) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in network.parameters() if p.requires_grad)


def test_a_memory_without_interface_takes_no_connection():
    slots = {"p": {"type": "persistent", "slots": 2, "width": 3}, **LSTM_DNC}
    wiring = [{"to": "c", "from": ["input", "p"]}, *WIRING[1:]]
    out, _ = Network(spec(slots, wiring)).run(torch.randn(2, 3, 4))
    assert out.shape == (2, 3, 3)
    with pytest.raises(ConfigError, match="module p \\(persistent\\) takes no input"):
        Network(spec(slots, [*wiring, {"to": "p", "from": "input"}]))


def test_extends_pulls_a_module_from_another_file():
    network = load_network(CONFIGS / "dnc.yaml")
    assert network.blocks["controller"].hidden == 64
    assert network.state_dict().keys() >= {"blocks.controller.cell.weight_ih"}


def test_one_controller_drives_two_memories_through_its_own_projections():
    network = load_network(CONFIGS / "two_memories.yaml")
    assert set(network.projections) == {"dnc", "persistent", "output"}
    assert network.projections["dnc"].out_features == network.blocks["dnc"].interface_size
    assert network.projections["persistent"].out_features == 16


def test_the_previous_step_is_read_through_stateful_modules():
    torch.manual_seed(0)
    network = Network(spec(LSTM_DNC, WIRING))
    xs = torch.randn(1, 3, 4, requires_grad=True)
    out, state = network.run(xs)
    (grad,) = torch.autograd.grad(out[:, 2].sum(), xs)
    assert grad[:, 0].abs().sum() > 0  # step 0 reaches step 2 through the memory's reads
    state = reset_state(network, state, torch.ones(1, dtype=torch.bool))
    assert all(v.abs().sum() == 0 for v in state["outputs"].values())
    assert state["modules"]["m"]["usage"].abs().sum() == 0


def test_residual_and_gate_merge_a_bypass():
    modules = {"a": {"type": "mlp", "hidden": 4}, "b": {"type": "mlp", "hidden": 4}}
    connections = [
        {"to": "a", "from": "input"},
        {"to": "b", "from": "a"},
        {"to": "b", "from": "a", "op": "residual"},
        {"to": "output", "from": "b"},
    ]
    network = Network(spec(modules, connections))
    _, state = network(torch.randn(2, 4), network.init_state(2))
    a = state["outputs"]["a"]
    torch.testing.assert_close(state["outputs"]["b"], network.blocks["b"](a, {})[0] + a)
    connections[2]["op"] = "gate"
    gated = Network(spec(modules, connections))
    assert "b<-a" in gated.gates and gated.run(torch.randn(2, 3, 4))[0].shape == (2, 3, 3)


@pytest.mark.parametrize(
    ("modules", "connections", "message"),
    [
        (LSTM_DNC, [*WIRING, {"to": "nope", "from": "c"}], "connections.3.to: unknown node 'nope'"),
        (LSTM_DNC, [*WIRING, {"to": "c", "from": "ghost"}], "connections.3.from: unknown node"),
        ({**LSTM_DNC, "m": {"type": "tape"}}, WIRING, "modules.m.type: 'tape' is not one of"),
        (
            {**LSTM_DNC, "m": {"type": "dnc", "slotz": 3}},
            WIRING,
            "modules.m.slotz: unknown field; allowed: type, slots",
        ),
        (
            {"a": {"type": "mlp", "hidden": 4}, "b": {"type": "mlp", "hidden": 4}},
            [
                {"to": "a", "from": ["input", "b"]},
                {"to": "b", "from": "a"},
                {"to": "output", "from": "b"},
            ],
            "loop without state: a reads b",
        ),
        (
            LSTM_DNC,
            [*WIRING, {"to": "c", "from": "m", "op": "residual"}],
            "width mismatch: residual from m (3) into c (8)",
        ),
        (
            {**LSTM_DNC, "c": {"type": "lstm"}},
            WIRING,
            "modules.c.hidden: Field required",
        ),
        (LSTM_DNC, WIRING[1:], "module c has no input"),
    ],
)
def test_graph_errors_say_exactly_what_is_wrong(modules, connections, message):
    with pytest.raises(ConfigError, match=None) as error:
        Network(spec(modules, connections))
    assert message in str(error.value)


def test_file_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("input_size: 4\noutput_size: 2\nmodules: {}\nconnections: []\nextra: 1\n")
    with pytest.raises(ConfigError) as error:
        load_network(path)
    text = str(error.value)
    assert str(path) in text and "modules:" in text and "extra: unknown field" in text
