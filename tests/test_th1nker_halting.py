"""The Th1nker's halting head: trained on the real correctness of every step, stopping each
problem at inference at its threshold or its budget; and the TRM-style recursion switch."""

import pytest
import torch
from helpers import TINY_MODEL, arithmetic_batch, run_model

from th1nker.models.config import ModelConfig
from th1nker.models.supervision import step_targets
from th1nker.models.th1nker import Th1nker, halting_loss


def model(**fields) -> Th1nker:
    torch.manual_seed(0)
    return Th1nker(ModelConfig(**{**TINY_MODEL, "halting": True, **fields}))


def set_halting_bias(m: Th1nker, bias: float) -> None:
    with torch.no_grad():
        m.halt_head.weight.zero_()
        m.halt_head.bias.fill_(bias)


def test_halting_logits_come_with_every_step_and_only_with_the_head():
    b = arithmetic_batch(4)
    assert run_model(model(), b, 3).halt.shape == (3, 4)
    assert run_model(model(halting=False), b, 3).halt is None
    assert not hasattr(model(halting=False), "halt_head")


def test_halting_labels_are_each_steps_real_correctness(monkeypatch):
    b = arithmetic_batch(6)
    out = run_model(model(), b, 2)
    perfect = torch.nn.functional.one_hot(b["target_ids"], out.logits.shape[-1]).float()
    out.logits = torch.stack((perfect, perfect.clone()))
    out.logits[1, 0, 0] = out.logits[1, 0, 0].roll(1)  # step 2 of row 0: one token wrong
    seen = {}

    def bce(logit, label, reduction):
        seen["label"] = label
        return torch.zeros_like(logit)

    monkeypatch.setattr(torch.nn.functional, "binary_cross_entropy_with_logits", bce)
    halting_loss(out, step_targets(b, torch.full((6,), 2)))
    expected = torch.ones(2, 6)
    expected[1, 0] = 0
    assert torch.equal(seen["label"], expected)


def test_under_trace_supervision_a_right_intermediate_state_is_not_done(monkeypatch):
    from helpers import scheme

    from th1nker.tasks.stream import ProblemStream

    two_digit = scheme(generators=[{"type": "arithmetic", "operations": "*", "digits": [2, 2]}])
    b = ProblemStream(two_digit, "train", 6, 0).batch(0).to_tensors(trace=True)
    targets = step_targets(b, torch.full((6,), 2))  # two states each: partial sum, product
    out = run_model(model(), b, 2)
    out.logits = torch.nn.functional.one_hot(targets.ids, out.logits.shape[-1]).float()
    seen = {}

    def bce(logit, label, reduction):
        seen["label"] = label
        return torch.zeros_like(logit)

    monkeypatch.setattr(torch.nn.functional, "binary_cross_entropy_with_logits", bce)
    halting_loss(out, targets)
    assert torch.equal(seen["label"], torch.tensor([[0.0] * 6, [1.0] * 6]))


@pytest.mark.parametrize("bias, expected", [(10.0, [1, 1, 1]), (-10.0, [2, 4, 3])])
def test_each_problem_stops_at_the_threshold_or_its_budget(bias, expected):
    m = model().eval()
    set_halting_bias(m, bias)
    b = arithmetic_batch(3)
    budget = torch.tensor([2, 4, 3])
    width = b["target_ids"].shape[1]
    out = m.generate(b["input_ids"], b["input_mask"], budget, width)
    assert out.steps.tolist() == expected
    traced = m.generate(b["input_ids"], b["input_mask"], budget, width, trace=True)
    assert traced.answers.shape[0] == 4 and traced.steps.tolist() == expected
    assert torch.equal(traced.answers[traced.steps - 1, torch.arange(3)], out.answers[0])
    probability = torch.sigmoid(torch.tensor(bias))
    torch.testing.assert_close(traced.halt, torch.full((4, 3), float(probability)))
    fixed = m.generate(b["input_ids"], b["input_mask"], budget, width, use_halting=False)
    assert fixed.steps.tolist() == [2, 4, 3]


def test_a_model_without_the_head_uses_its_budget_and_reports_nan():
    m = model(halting=False).eval()
    b = arithmetic_batch(2)
    out = m.generate(b["input_ids"], b["input_mask"], torch.tensor([1, 3]), 4)
    assert out.steps.tolist() == [1, 3] and torch.isnan(out.halt).all()


def test_trm_recursion_updates_z_then_the_latents_with_the_same_blocks(monkeypatch):
    m = model(recursion="trm", latent_updates=3, halting=False)
    calls = []
    original = m.process
    monkeypatch.setattr(m, "process", lambda *args: calls.append(1) or original(*args))
    b = arithmetic_batch(4)
    out = run_model(m, b, 2)
    assert len(calls) == 2 * (3 + 1)  # per step: 3 updates of z, 1 of the latents
    loss = out.logits.float().logsumexp(-1).mean()
    loss.backward()
    assert all(p.grad is not None for p in m.thinker.parameters())


def test_trm_recursion_carries_z_across_steps_unless_truncated():
    b = arithmetic_batch(4)
    for truncate in (False, True):
        m = model(recursion="trm", truncate_gradients=truncate, halting=False)
        (first, _), (second, _) = m.think(b["input_ids"], b["input_mask"], torch.full((4,), 2))
        (grad,) = torch.autograd.grad(second.sum(), first, allow_unused=True)
        assert (grad is None) == truncate
