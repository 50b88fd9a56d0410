"""The Th1nker model: shapes, masks, memory, deep supervision, per-problem steps, decoding."""

import pytest
import torch
from helpers import TINY_MODEL, arithmetic_batch, run_model

from th1nker.memory.latent import LatentMemory
from th1nker.models.config import ModelConfig
from th1nker.models.th1nker import Th1nker, deep_supervision_loss, exact_match
from th1nker.tasks.vocab import EOS, PAD, VOCAB_SIZE


def model(**fields) -> Th1nker:
    torch.manual_seed(0)
    return Th1nker(ModelConfig(**{**TINY_MODEL, **fields}))


@pytest.mark.parametrize("decoder", ["autoregressive", "parallel"])
def test_output_shapes(decoder):
    b = arithmetic_batch()
    out = run_model(model(decoder=decoder), b, 3)
    n, width = b["target_ids"].shape
    assert out.logits.shape == (3, n, width, VOCAB_SIZE)
    assert out.active.shape == (3, n) and bool(out.active.all())


def test_input_padding_changes_nothing():
    m = model().eval()
    b = arithmetic_batch()
    padded = dict(b)
    extra = torch.full((len(b["task"]), 5), PAD)
    padded["input_ids"] = torch.cat((b["input_ids"], extra), dim=1)
    padded["input_mask"] = torch.cat((b["input_mask"], torch.zeros_like(extra, dtype=bool)), dim=1)
    torch.testing.assert_close(run_model(m, b).logits, run_model(m, padded).logits)


def test_autoregressive_queries_are_causal():
    """Changing a later answer token does not change the logits of earlier positions."""
    m = model().eval()
    b = arithmetic_batch()
    changed = dict(b)
    changed["target_ids"] = b["target_ids"].clone()
    changed["target_ids"][:, -1] = 7
    before, after = run_model(m, b).logits, run_model(m, changed).logits
    torch.testing.assert_close(before[:, :, :-1], after[:, :, :-1])


def test_memory_appends_and_evicts_oldest_first():
    memory = LatentMemory(capacity=5)
    state = LatentMemory.init_state(torch.zeros(1, 2, 3))
    for step in range(4):
        values = torch.full((1, 2, 3), float(step))
        state = memory.append(state, values, torch.tensor([[0, 1]]))
        assert state["values"].shape[1] == min(5, 2 * (step + 1))
    assert state["values"][0, :, 0].tolist() == [1.0, 2.0, 2.0, 3.0, 3.0]
    assert state["positions"][0].tolist() == [1, 0, 1, 0, 1]


def test_thinking_fills_memory_up_to_its_size():
    m = model(mem_cache_size=20)
    b = arithmetic_batch(4)
    inputs = m.encode_input(b["input_ids"], b["input_mask"])
    latents = m.init_latent(4)
    memory = m.init_kv_cache(latents)
    sizes = []
    for _ in range(4):
        latents, memory = m.read_input(latents, inputs, memory)
        latents = m.process(latents, memory)
        sizes.append(memory["values"].shape[1])
    assert sizes == [8, 16, 20, 20]
    _, untouched = m.read_input(latents, inputs, memory, latent_to_memory=False)
    assert untouched["values"] is memory["values"]


def test_deep_supervision_gives_a_loss_per_step_and_respects_row_steps():
    b = arithmetic_batch()
    steps = torch.tensor([1, 3] * 8)
    out = run_model(model(), b, steps)
    assert out.active[:, 0].tolist() == [True, False, False]
    assert out.active[:, 1].tolist() == [True, True, True]
    loss, per_step = deep_supervision_loss(out, b["target_ids"], b["target_mask"])
    assert per_step.shape == (3,) and torch.isfinite(per_step).all()
    torch.testing.assert_close(loss, per_step.mean())
    # a row's loss at steps after its own last step is ignored: poison them and compare
    poisoned = out.logits.clone()
    poisoned[1:, 0::2] = 1e4 * torch.randn_like(poisoned[1:, 0::2])
    out.logits = poisoned
    _, again = deep_supervision_loss(out, b["target_ids"], b["target_mask"])
    torch.testing.assert_close(again, per_step)


@pytest.mark.parametrize("truncate", [False, True])
def test_truncated_gradients_stop_at_step_boundaries(truncate):
    b = arithmetic_batch(4)
    m = model(truncate_gradients=truncate)
    (first, _), (second, _) = m.think(b["input_ids"], b["input_mask"], torch.full((4,), 2))
    (grad,) = torch.autograd.grad(second.sum(), first, allow_unused=True)
    assert (grad is None) == truncate


def test_greedy_decoding_agrees_with_teacher_forcing():
    """Generated answers have eos then pad, and teacher forcing on the model's own greedy answer
    predicts that answer at every token (up to its eos): decoding and the teacher-forced path
    compute the same thing."""
    b = arithmetic_batch(64)
    m = model().eval()
    steps = torch.full((64,), 2)
    answers = m.generate(b["input_ids"], b["input_mask"], steps, b["target_ids"].shape[1] + 2)
    answers = answers.answers[0]
    for row in answers.tolist():
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1 :])
    is_eos = (answers == EOS).long()
    upto_eos = (is_eos.cumsum(dim=1) - is_eos) == 0  # every token up to and including eos
    out = m(b["input_ids"], b["input_mask"], answers, steps)
    tf_tokens = out.logits[-1].argmax(-1)
    assert upto_eos.sum() > 64  # more than one token per row is compared
    assert (tf_tokens[upto_eos] == answers[upto_eos]).all()


def test_a_tiny_model_overfits_a_fixed_batch():
    torch.manual_seed(0)
    b = arithmetic_batch(16)
    m = model()
    optimizer = torch.optim.AdamW(m.parameters(), lr=3e-3)
    steps = torch.full((16,), 2)
    for _ in range(300):
        out = run_model(m, b, steps)
        loss, _ = deep_supervision_loss(out, b["target_ids"], b["target_mask"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = run_model(m.eval(), b, steps)
    assert exact_match(out, b["target_ids"], b["target_mask"], steps).all()
    answers = m.generate(b["input_ids"], b["input_mask"], steps, b["target_ids"].shape[1])
    answers = answers.answers[0]
    width = b["target_ids"].shape[1]
    assert torch.equal(answers[:, :width].masked_fill(~b["target_mask"], PAD), b["target_ids"])


def test_steps_grow_with_digits_and_stop_at_max():
    config = ModelConfig(steps=1, steps_per_digit=0.25, max_thinking_steps=3)
    assert config.steps_for(torch.tensor([0, 1, 4, 5, 8, 40])).tolist() == [1, 2, 2, 3, 3, 3]


def test_bad_model_configs_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        ModelConfig(dim=30, n_heads=4)
    with pytest.raises(ValueError, match="max_thinking_steps"):
        ModelConfig(steps=5, max_thinking_steps=3)
    with pytest.raises(ValueError, match="input_cache_size"):
        m = model(input_cache_size=4)
        b = arithmetic_batch()
        run_model(m, b)


def test_parallel_slots_refuse_answers_longer_than_the_slots():
    b = arithmetic_batch()
    with pytest.raises(ValueError, match="do not fit model.answer_slots 2"):
        run_model(model(decoder="parallel", answer_slots=2), b)


def test_random_offsets_only_in_training_and_only_for_digits():
    m = model(position_offset=16)
    b = arithmetic_batch(64)
    train_inputs = m.encode_input(b["input_ids"], b["input_mask"])
    eval_inputs = m.eval().encode_input(b["input_ids"], b["input_mask"])
    assert (eval_inputs["offset"] == 0).all() and train_inputs["offset"].max() > 0
    shift = train_inputs["positions"] - eval_inputs["positions"]
    is_digit = (b["input_ids"] < 256) & (b["input_ids"] != 10)  # no base value in this scheme
    assert (shift[~is_digit] == 0).all()
    assert (shift == torch.where(is_digit, train_inputs["offset"][:, None], 0)).all()


def test_decoded_answers_always_have_max_answer_tokens(monkeypatch):
    """Decoding stops early once every row wrote eos; the answer is still padded to max_answer,
    so traces of steps that stopped at different lengths stack."""
    m = model().eval()
    eos_first = torch.nn.functional.one_hot(torch.tensor(EOS), m.config.vocab).float()
    monkeypatch.setattr(m, "write_out", lambda z, q, o: eos_first.expand(*q.shape, -1))
    tokens = m.decode(m.init_latent(3), torch.zeros(3, dtype=torch.long), max_answer=7)
    assert tokens.shape == (3, 7) and (tokens[:, 0] == EOS).all() and (tokens[:, 1:] == PAD).all()


@pytest.mark.parametrize("recursion", ["none", "trm"])
def test_rows_past_their_budget_are_not_thought_about_and_nothing_else_changes(recursion):
    m = model(recursion=recursion)  # training mode: random position offsets, drawn alike
    b = arithmetic_batch(12)
    steps = torch.tensor([1, 3, 2, 3, 1, 2, 2, 3, 1, 1, 3, 2])
    torch.manual_seed(5)
    shrunk = list(m.think(b["input_ids"], b["input_mask"], steps))
    torch.manual_seed(5)
    full = list(m.think(b["input_ids"], b["input_mask"], steps, past_budget=True))
    m.eval()
    assert len(shrunk) == len(full) == 3
    for k, (ours, _) in enumerate(shrunk):
        last = torch.minimum(steps - 1, torch.tensor(k))  # a spent row keeps its last latents
        for row in range(12):
            expected = full[int(last[row])][0][row]
            torch.testing.assert_close(ours[row], expected, rtol=1e-5, atol=1e-5)
    answers = m.generate(b["input_ids"], b["input_mask"], steps, 8).answers[0]
    traced = m.generate(b["input_ids"], b["input_mask"], steps, 8, trace=True).answers
    assert torch.equal(answers, traced[steps - 1, torch.arange(12)])
