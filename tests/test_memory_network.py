"""Controllers and the DNC network: states, sequences, truncated backpropagation."""

import pytest
import torch

from th1nker.memory.dnc_network import dnc_network
from th1nker.memory.registry import CONTROLLERS


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_controllers_pass_their_state_in_and_out(name):
    controller = CONTROLLERS[name](hidden=8).build(4)
    fresh = controller.init_state(2)
    first, state = controller(torch.randn(2, 4), fresh)
    again, _ = controller(torch.ones(2, 4), fresh)
    second, _ = controller(torch.ones(2, 4), state)
    assert first.shape == second.shape == (2, 8)
    if name == "mlp":
        assert state == {} and torch.equal(again, second)
    else:
        assert not torch.equal(again, second)  # the state after the first step differs
    repeat, _ = controller(torch.ones(2, 4), fresh)
    torch.testing.assert_close(repeat, again)  # a step is a pure function of (x, state)
    assert list(controller.state_dict()) == [k for k, _ in controller.named_parameters()]


def test_a_dnc_runs_over_a_sequence_and_truncates_gradients():
    torch.manual_seed(0)
    dnc = dnc_network(input_size=5, output_size=3, hidden=16, slots=6, width=4, reads=2)
    xs = torch.randn(2, 6, 5, requires_grad=True)
    out, _ = dnc.run(xs)
    assert out.shape == (2, 6, 3)
    (grad,) = torch.autograd.grad(out[:, 5].sum(), xs)
    assert grad[:, 0].abs().sum() > 0  # the last output depends on the first input
    out, _ = dnc.run(xs, detach_every=2)
    (grad,) = torch.autograd.grad(out[:, 5].sum(), xs)
    assert grad[:, :4].abs().sum() == 0 and grad[:, 4:].abs().sum() > 0


def test_a_dnc_learns_to_recall_its_first_input():
    """A small learning check: output the first input vector at the last step (needs memory or
    the controller's state over 5 steps)."""
    torch.manual_seed(0)
    dnc = dnc_network(input_size=4, output_size=4, hidden=32, slots=8, width=8)
    optimizer = torch.optim.Adam(dnc.parameters(), lr=3e-3)
    for _ in range(300):
        bits = torch.randint(0, 2, (32, 5, 4)).float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            dnc.run(bits)[0][:, -1], bits[:, 0]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    bits = torch.randint(0, 2, (256, 5, 4)).float()
    errors = ((dnc.run(bits)[0][:, -1] > 0).float() != bits[:, 0]).float().mean()
    assert errors < 0.05, errors


def test_unknown_controller_is_a_clear_error():
    with pytest.raises(
        ValueError, match="controller .rnn. is not one of lstm, gru, mlp, transformer"
    ):
        dnc_network(3, 3, controller="rnn")
