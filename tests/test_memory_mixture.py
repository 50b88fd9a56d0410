"""The mixture of experts over memories: top-k routes exactly k experts, capacity drops the
overflow, expert choice fills each expert, an expert not selected keeps its state, and the
router losses are what Switch / ST-MoE define."""

import pytest
import torch

from th1nker.memory.mixture import MixtureOfExperts
from th1nker.memory.routing import router_losses, router_stats

NEURAL = {"type": "neural", "width": 4, "hidden": 8}


def mixture(n_experts=3, **router) -> MixtureOfExperts:
    torch.manual_seed(0)
    return MixtureOfExperts(width=8, experts=[NEURAL] * n_experts, router=router)


def favour(moe: MixtureOfExperts, expert: int) -> None:
    """Router weights that send every row with a positive first feature to `expert`."""
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[expert, 0] = 50.0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_routes_exactly_k_experts_per_row(k):
    moe = mixture(top_k=k)
    out, state = moe(torch.randn(10, 8), moe.init_state(10))
    assert (state["routed"].sum(-1) == k).all()
    _, _, gates = moe.route(torch.randn(10, 8))
    torch.testing.assert_close(gates.sum(-1), torch.ones(10))  # renormalized over the k


def test_an_expert_not_selected_is_not_updated():
    moe = mixture(top_k=1)
    favour(moe, 1)
    x = torch.randn(6, 8)
    x[:, 0] = 1.0
    x[3, 0] = -1.0  # row 3 goes elsewhere
    state = moe.init_state(6)
    _, new = moe(x, state)
    assert new["routed"][:, 1].tolist() == [1, 1, 1, 0, 1, 1]
    moved = new["experts"]["1"]["weights"]["w1"] != state["experts"]["1"]["weights"]["w1"]
    assert moved.flatten(1).any(1).tolist() == [True, True, True, False, True, True]
    other = int(new["routed"][3].argmax())
    for expert in {"0", "2"} - {str(other)}:  # nobody was sent to it: untouched
        assert new["experts"][expert]["step"].tolist() == [0] * 6
    assert new["experts"][str(other)]["step"].tolist() == [0, 0, 0, 1, 0, 0]


def test_capacity_drops_the_lowest_probability_overflow():
    moe = mixture(top_k=1, capacity_factor=1.0)  # ceil(1 * 6 * 1 / 3) = 2 rows per expert
    favour(moe, 0)
    x = torch.randn(6, 8)
    x[:, 0] = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.05, 0.3])
    logits, probs, gates = moe.route(x)
    assert moe.capacity(6) == 2
    assert (gates[:, 0] > 0).tolist() == [False, True, False, True, False, False]
    assert (gates[:, 1:] == 0).all()  # the dropped rows go nowhere (their top-1 was full)


def test_expert_choice_gives_each_expert_its_capacity():
    moe = mixture(kind="expert_choice", top_k=1)
    _, _, gates = moe.route(torch.randn(9, 8))
    assert (gates > 0).sum(0).tolist() == [3, 3, 3]


def test_load_balance_is_minimal_for_uniform_routing_and_z_loss_is_defined():
    experts, rows = 4, 8
    uniform = {
        "probs": torch.full((rows, experts), 1 / experts),
        "routed": torch.eye(experts).repeat(2, 1),
        "logits": torch.zeros(rows, experts),
    }
    assert float(router_losses(uniform)["load_balance"]) == pytest.approx(1.0)
    collapsed = {
        "probs": torch.eye(experts)[[0] * rows],
        "routed": torch.eye(experts)[[0] * rows],
        "logits": torch.zeros(rows, experts),
    }
    assert float(router_losses(collapsed)["load_balance"]) == pytest.approx(experts)
    torch.manual_seed(0)
    for _ in range(20):  # never below the uniform minimum for valid routings
        probs = torch.softmax(torch.randn(rows, experts) * 3, -1)
        routed = torch.nn.functional.one_hot(probs.argmax(-1), experts).float()
        state = {"probs": probs, "routed": routed, "logits": torch.randn(rows, experts)}
        losses = router_losses(state)
        expected_z = torch.logsumexp(state["logits"], -1).pow(2).mean()
        torch.testing.assert_close(losses["z_loss"], expected_z)
        assert float(losses["load_balance"]) >= 0
    stats = router_stats(uniform)
    assert stats["load"] == [0.25] * 4 and stats["entropy"] == pytest.approx(
        float(torch.log(torch.tensor(4.0)))
    )


def test_the_router_learns_through_the_gates():
    moe = mixture(top_k=2)
    out, state = moe(torch.randn(5, 8), moe.init_state(5))
    (out.sum() + router_losses(state, 2)["load_balance"]).backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_bad_mixtures_are_refused_by_name():
    with pytest.raises(ValueError, match="top_k 3 > 2 experts"):
        MixtureOfExperts(experts=[NEURAL, NEURAL], router={"top_k": 3})
    with pytest.raises(ValueError, match="kind"):
        MixtureOfExperts(experts=[NEURAL, NEURAL], router={"kind": "hash"})
    with pytest.raises(ValueError, match="slotz"):
        MixtureOfExperts(experts=[NEURAL, {"type": "dnc", "slotz": 3}])


def test_experts_can_be_controllers_and_whole_sub_networks():
    sub_network = {
        "type": "network",
        "network": {
            "input_size": 8,
            "output_size": 6,
            "modules": {"gru": {"type": "gru", "hidden": 5}, "memory": NEURAL},
            "connections": [
                {"to": "gru", "from": ["input", "memory"]},
                {"to": "memory", "from": "gru"},
                {"to": "output", "from": ["gru", "memory"]},
            ],
        },
    }
    moe = MixtureOfExperts(width=8, experts=[{"type": "lstm", "hidden": 7}, sub_network])
    assert [m.output_size if hasattr(m, "output_size") else m.hidden for m in moe.experts] == [7, 6]
    state = moe.init_state(4)
    for _ in range(3):  # the LSTM's and the sub-network's states travel in the mixture's
        out, state = moe(torch.randn(4, 8), state)
    assert out.shape == (4, 8) and set(state["experts"]) == {"0", "1"}
    out.sum().backward()
    assert all(p.grad is not None for p in moe.router.parameters())
    with pytest.raises(ValueError, match="lstmm"):
        MixtureOfExperts(experts=[NEURAL, {"type": "lstmm", "hidden": 3}])
