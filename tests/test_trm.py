"""The TRM: recursion without graphs in the no-grad rounds, detached carries, ACT training
(real halting labels, halted rows leave the batch), inference threshold and maximum, sampling,
repeatability, and a tiny TRM overfitting a fixed batch."""

import pytest
import torch
from helpers import arithmetic_batch

from th1nker.models import act
from th1nker.models.act import act_step, refill, row_exact_match
from th1nker.models.config import TRMConfig
from th1nker.models.generation import sample_logits
from th1nker.models.trm import TRM
from th1nker.tasks.vocab import EOS, PAD

TINY_TRM = {
    "kind": "trm", "dim": 32, "n_heads": 2, "n_layers": 1, "input_cache_size": 16,
    "answer_slots": 6, "latent_updates": 2, "recursions": 3, "supervision_steps": 4,
}  # fmt: skip


def trm(**fields) -> TRM:
    torch.manual_seed(0)
    return TRM(TRMConfig(**{**TINY_TRM, **fields}))


def set_halting_bias(model: TRM, bias: float) -> None:
    with torch.no_grad():
        model.q_head.bias.fill_(bias)


def test_only_the_last_round_builds_a_graph():
    model = trm()
    grad_enabled = []
    model.net.register_forward_hook(lambda *_: grad_enabled.append(torch.is_grad_enabled()))
    b = arithmetic_batch(4)
    carry = model.start(b["input_ids"], b["input_mask"])
    following, logits, halt_logit = model.supervision_step(carry)
    per_round = model.config.latent_updates + 1
    assert grad_enabled == [False] * 2 * per_round + [True] * per_round
    assert logits.requires_grad and halt_logit.requires_grad
    assert following["y"].grad_fn is None and following["z"].grad_fn is None
    assert following["steps"].tolist() == [1] * 4


def test_mixer_blocks_run_too():
    model = trm(mixer="mlp")
    b = arithmetic_batch(4)
    _, logits, _ = model.supervision_step(model.start(b["input_ids"], b["input_mask"]))
    assert logits.shape == (4, 6, model.config.vocab)


def test_supervision_steps_share_no_graph():
    model = trm()
    b = arithmetic_batch(4)
    carry, first_logits, _ = model.supervision_step(model.start(b["input_ids"], b["input_mask"]))
    _, second_logits, _ = model.supervision_step(carry)
    second_logits.sum().backward()
    (grad,) = torch.autograd.grad(first_logits.sum(), model.embed.weight, allow_unused=True)
    assert grad is not None  # the first step's graph is its own, still intact
    assert carry["y"].grad is None and not carry["y"].requires_grad


def test_halting_labels_are_the_real_correctness(monkeypatch):
    model = trm()
    b = arithmetic_batch(8)
    seen = {}
    original = model.read_out

    def read_out(y):
        logits, halt = original(y)
        seen["logits"] = logits
        return logits, halt

    def bce(logit, label):
        seen["label"] = label
        return torch.nn.functional.binary_cross_entropy(logit.sigmoid(), label)

    monkeypatch.setattr(model, "read_out", read_out)
    monkeypatch.setattr(act.nn.functional, "binary_cross_entropy_with_logits", bce)
    carry, _, _ = act_step(model, None, b)
    answers = carry["step_ids"][:, 0]  # no traces: every supervision step's target is the answer
    assert (carry["step_ids"] == answers[:, None]).all()
    right = row_exact_match(seen["logits"], answers, answers != PAD)
    assert torch.equal(seen["label"], right.float())
    # a row whose argmax equals its answer counts as right, one wrong token makes it wrong
    targets = answers[:2]
    perfect = torch.nn.functional.one_hot(targets, model.config.vocab).float()
    perfect[1, 0] = perfect[1, 0].roll(1)
    assert row_exact_match(perfect, targets, targets != PAD).tolist() == [True, False]


def test_halted_rows_leave_the_batch_and_new_problems_take_their_place():
    model = trm(halt_exploration=0.0)
    first, second = arithmetic_batch(8, index=0), arithmetic_batch(8, index=1)
    set_halting_bias(model, -10.0)  # nobody wants to stop
    carry, _, _ = act_step(model, None, first)
    assert not carry["halted"].any() and carry["steps"].tolist() == [1] * 8
    rows = torch.tensor([True, False] * 4)
    carry["halted"] = rows
    carry, _, _ = act_step(model, carry, second)
    fresh = model.start(second["input_ids"], second["input_mask"])["tokens"]
    old = model.start(first["input_ids"], first["input_mask"])["tokens"]
    assert torch.equal(carry["tokens"][rows], fresh[rows])
    assert torch.equal(carry["tokens"][~rows], old[~rows])
    assert carry["steps"].tolist() == [1, 2] * 4
    set_halting_bias(model, 10.0)  # everybody is done
    carry, _, stats = act_step(model, carry, second)
    assert carry["halted"].all() and stats["halted"] == 8


def test_the_step_limit_halts_and_exploration_delays_halting():
    model = trm(halt_exploration=1.0, supervision_steps=3)
    set_halting_bias(model, 10.0)
    b = arithmetic_batch(16)
    carry, _, _ = act_step(model, None, b)
    minimum = carry["min_steps"]
    assert (minimum >= 2).all() and (minimum <= 3).all()
    assert not carry["halted"].any()  # every row must use its drawn minimum first
    carry, _, _ = act_step(model, carry, b)
    assert torch.equal(carry["halted"], minimum <= 2)
    carry["halted"][:] = False
    carry, _, _ = act_step(model, carry, b)
    assert carry["halted"].all()  # step 3 = supervision_steps


def test_refill_replaces_every_key_of_the_chosen_rows():
    carry = {"a": torch.zeros(3, 2), "b": torch.zeros(3, dtype=torch.long)}
    fresh = {"a": torch.ones(3, 2), "b": torch.ones(3, dtype=torch.long)}
    out = refill(carry, fresh, torch.tensor([False, True, False]))
    assert out["a"][:, 0].tolist() == [0, 1, 0] and out["b"].tolist() == [0, 1, 0]


@pytest.mark.parametrize("bias, expected", [(10.0, [1, 1, 1]), (-10.0, [2, 4, 3])])
def test_inference_stops_at_the_threshold_or_the_maximum(bias, expected):
    model = trm().eval()
    set_halting_bias(model, bias)
    b = arithmetic_batch(3)
    budget = torch.tensor([2, 4, 3])
    out = model.generate(b["input_ids"], b["input_mask"], budget, 6)
    assert out.steps.tolist() == expected and out.answers.shape == (1, 3, 6)
    traced = model.generate(b["input_ids"], b["input_mask"], budget, 6, trace=True)
    assert traced.answers.shape == (4, 3, 6) and traced.steps.tolist() == expected
    rows = torch.arange(3)
    assert torch.equal(traced.answers[traced.steps - 1, rows], out.answers[0])


def test_the_threshold_is_a_probability():
    b = arithmetic_batch(2)
    for threshold, steps in ((0.4, 1), (0.6, 4)):
        model = trm(halt_threshold=threshold).eval()
        set_halting_bias(model, 0.0)  # probability 0.5 (q weights start at zero)
        out = model.generate(b["input_ids"], b["input_mask"], torch.tensor([4, 4]), 6)
        assert out.steps.tolist() == [steps] * 2
        torch.testing.assert_close(out.halt[0], torch.tensor([0.5, 0.5]))


def test_sample_logits_temperature_top_k_top_p():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]]).expand(2000, -1)
    greedy = torch.full((2000,), 1)
    assert torch.equal(sample_logits(logits, temperature=0.0), greedy)
    assert torch.equal(sample_logits(logits, top_k=1), greedy)
    assert torch.equal(sample_logits(logits, top_p=0.01), greedy)
    g = torch.Generator().manual_seed(0)
    drawn = sample_logits(logits, top_k=2, generator=g)
    assert set(drawn.tolist()) == {1, 3}
    share = (drawn == 1).float().mean()  # p(1) / (p(1) + p(3)) = 1 / (1 + e^-1) = 0.731
    assert abs(share - 0.731) < 0.04
    everything = sample_logits(logits, temperature=5.0, generator=g)
    assert set(everything.tolist()) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="top_p"):
        sample_logits(logits, top_p=0.0)


def test_sample_continues_the_recursion_instead_of_restarting(monkeypatch):
    model = trm(supervision_steps=3, halting=False).eval()
    b = arithmetic_batch(4)
    calls = []
    original = model.supervision_step
    monkeypatch.setattr(model, "supervision_step", lambda c: calls.append(1) or original(c))
    answer = model.sample(b["input_ids"], b["input_mask"], b["digits"], 5, temperature=0.0)
    assert answer.shape == (4, 5)
    written = 5 if not (answer == EOS).any(1).all() else None
    assert len(calls) <= 3 + (written or 5)  # 3 to think, then at most one per token
    for row in answer.tolist():
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1 :])


def test_act_training_is_seeded_and_repeatable():
    def losses():
        model = trm()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        carry, out = None, []
        for index in range(4):
            carry, loss, _ = act_step(model, carry, arithmetic_batch(8, index=index))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            out.append(loss.item())
        return out

    assert losses() == losses()


def test_a_tiny_trm_overfits_a_fixed_batch():
    model = trm(halting=False, supervision_steps=2, recursions=2, latent_updates=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    b = arithmetic_batch(16)
    carry = None
    for _ in range(400):
        carry, loss, _ = act_step(model, carry, b)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = model.eval().generate(b["input_ids"], b["input_mask"], torch.full((16,), 2), 6)
    width = b["target_ids"].shape[1]
    got = out.answers[0, :, :width].masked_fill(~b["target_mask"], PAD)
    assert torch.equal(got, b["target_ids"])


def test_under_trace_supervision_step_k_is_taught_trace_state_k():
    """The carry holds each row's per-step targets; the halting label needs the final state."""
    from helpers import scheme

    from th1nker.tasks.stream import ProblemStream

    model = trm(halt_exploration=0.0, answer_slots=8)
    multiplication = scheme(
        generators=[{"type": "arithmetic", "operations": "*", "digits": [2, 3]}]
    )
    problems = ProblemStream(multiplication, "train", 8, 0).batch(0)
    batch, traces = problems.to_tensors(trace=True), problems.trace()
    carry, _, _ = act_step(model, None, batch)
    for i, trace in enumerate(traces):
        for k in range(model.config.supervision_steps):
            got = carry["step_ids"][i, k][carry["step_ids"][i, k] != PAD].tolist()
            last = k == model.config.supervision_steps - 1
            assert got == (trace[-1] if last else trace[min(k, len(trace) - 1)])
            assert bool(carry["step_final"][i, k]) == (last or k >= len(trace) - 1)
