"""The decoder-only baseline: its scratchpad is the trace, only its answer is checked, cached
greedy decoding equals decoding from scratch, and it learns a fixed batch in both variants."""

import json
from pathlib import Path

import pytest
import torch
from helpers import scheme

from th1nker.config_files import ConfigError
from th1nker.models.config import DecoderConfig
from th1nker.models.decoder_only import (
    DecoderOnly,
    answer_after_scratchpad,
    index_positions,
    left_padded,
    scratchpad_of,
    scratchpad_states,
    self_mask,
)
from th1nker.solve import pretrained_path, solve, state_text
from th1nker.tasks.checking import check_batch
from th1nker.tasks.stream import ProblemStream
from th1nker.tasks.vocab import EOS, EQUALS, PAD, TOKEN_IDS
from th1nker.train.checkpoint import load_checkpoint
from th1nker.train.evaluate import evaluate
from th1nker.train.experiment import load_experiment

EXPRESSIONS = [{"type": "arithmetic", "operands": [2, 4], "digits": [1, 2]}]
MULTIPLICATION = [{"type": "arithmetic", "operations": "*", "digits": [1, 3]}]
TINY = {"kind": "decoder", "dim": 32, "n_layers": 2, "n_heads": 2}


def traced(generators, n=64, seed=0):
    problems = ProblemStream(scheme(generators=generators), "train", n, seed).batch(0)
    return problems, problems.to_tensors(trace=True)


@pytest.mark.parametrize("generators", [MULTIPLICATION, EXPRESSIONS])
def test_the_scratchpad_is_every_state_joined_by_equals_and_its_answer_is_read_back(generators):
    problems, batch = traced(generators, n=500)
    pads = scratchpad_of(batch)
    width = batch["target_ids"].shape[1]
    for i, trace in enumerate(problems.trace()):
        expected = [t for state in trace[:-1] for t in state[:-1] + [EQUALS]] + trace[-1]
        assert pads[i][pads[i] != PAD].tolist() == expected
    answers, states = answer_after_scratchpad(pads, width + 2)
    assert all(v.correct for v in check_batch(batch, answers))
    assert states.tolist() == batch["trace_len"].tolist()


def test_an_answer_is_what_follows_the_last_equals_before_eos():
    seven, three = 7, 3
    written = torch.tensor(
        [
            [seven, EQUALS, three, EOS, EQUALS, seven],  # after eos: ignored
            [three, EOS, PAD, PAD, PAD, PAD],  # no scratchpad
            [seven, EQUALS, three, three, three, three],  # no eos: never right
        ]
    )
    answers, states = answer_after_scratchpad(written, 3)
    assert answers.tolist() == [[three, EOS, PAD], [three, EOS, PAD], [three, three, three]]
    assert states.tolist() == [2, 1, 2]


def test_every_state_written_is_shown_and_short_rows_repeat_their_answer():
    seven, three, plus = 7, 3, TOKEN_IDS["+"]
    written = torch.tensor(
        [
            [seven, plus, three, EQUALS, seven, three, EOS, EQUALS],  # 7+3 = 37, then ignored
            [three, EOS, PAD, PAD, PAD, PAD, PAD, PAD],  # the answer alone
        ]
    )
    states = scratchpad_states(written, 4)
    assert states[:, 0].tolist() == [[seven, plus, three, EOS], [seven, three, EOS, PAD]]
    assert states[:, 1].tolist() == [[three, EOS, PAD, PAD]] * 2
    assert state_text([seven, plus, three], 10) == "7+3" and state_text([plus], 10) == ""


def test_solve_shows_the_scratchpad_of_the_shipped_expressions_model():
    _, model, _ = load_checkpoint(pretrained_path("expressions"))
    (solution,) = solve(model, ["12+34*5-6"], trace=True)
    assert len(solution.trace) == solution.steps == 3  # one reduction per state
    assert all(state.count("+") + state.count("-") >= 1 for state in solution.trace[:-1])
    assert solution.trace[-1] == solution.answer


def test_left_padding_keeps_each_row_in_order_and_pads_see_only_themselves():
    ids = torch.tensor([[5, 6, 7], [8, PAD, PAD]])
    moved, valid = left_padded(ids, ids != PAD)
    assert moved.tolist() == [[5, 6, 7], [PAD, PAD, 8]]
    assert index_positions(valid).tolist() == [[0, 1, 2], [0, 0, 0]]
    mask = self_mask(valid)
    assert mask[1].tolist() == [[True, False, False], [False, True, False], [False, False, True]]
    assert mask[0].tolist() == [[True, False, False], [True, True, False], [True, True, True]]


@pytest.mark.parametrize("scratchpad", [False, True])
def test_cached_greedy_decoding_writes_what_the_full_sequence_predicts(scratchpad):
    torch.manual_seed(0)
    model = DecoderOnly(DecoderConfig(**TINY, scratchpad=scratchpad, max_scratchpad=12)).eval()
    _, batch = traced(EXPRESSIONS, n=16)
    tokens, valid = model.prompt(batch["input_ids"], batch["input_mask"])
    cache_off = torch.zeros(len(tokens), dtype=torch.long)
    generated = []
    for _ in range(12):  # greedy decoding without a cache: the whole sequence every time
        x = model.embed_tokens(tokens, cache_off)
        hidden = model.hidden(x, index_positions(valid), self_mask(valid))
        token = model.head(model.out_norm(hidden[:, -1])).argmax(-1)
        generated.append(token)
        tokens = torch.cat((tokens, token[:, None]), 1)
        valid = torch.cat((valid, torch.ones_like(valid[:, :1])), 1)
    written = torch.stack(generated, 1)
    out = model.generate(batch["input_ids"], batch["input_mask"], batch["digits"], 12)
    if scratchpad:
        expected, _ = answer_after_scratchpad(written, 12)
    else:
        expected = torch.where(
            (written == EOS).cumsum(1) - (written == EOS).long() > 0, PAD, written
        )
    assert torch.equal(out.answers[0], expected)


@pytest.mark.parametrize("scratchpad", [False, True])
def test_a_tiny_decoder_learns_a_fixed_batch_and_answers_it_exactly(scratchpad):
    torch.manual_seed(0)
    model = DecoderOnly(DecoderConfig(**TINY, scratchpad=scratchpad, position_offset=0))
    _, batch = traced(MULTIPLICATION, n=16)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        loss, stats, _ = model.loss(batch, None)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert stats.correct == 16
    model.eval()
    width = batch["target_ids"].shape[1] + 2
    out = model.generate(batch["input_ids"], batch["input_mask"], batch["digits"], width)
    assert all(v.correct for v in check_batch(batch, out.answers[0]))
    if scratchpad:
        assert out.steps.tolist() == batch["trace_len"].tolist()


def test_the_decoder_is_trained_only_with_the_supervision_its_variant_needs():
    with pytest.raises(ConfigError, match="model.scratchpad needs train.supervision: trace"):
        load_experiment(None, ["model={kind: decoder, scratchpad: true}"])
    with pytest.raises(ConfigError, match="learns the answer alone"):
        load_experiment(None, ["model={kind: decoder}", "train.supervision=trace"])
    with pytest.raises(ConfigError, match="no train.trace_fade"):
        load_experiment(
            None,
            [
                "model={kind: decoder, scratchpad: true}",
                "train.supervision=trace",
                "train.trace_fade=[1,2]",
            ],
        )
    config = load_experiment(
        None, ["model={kind: decoder, scratchpad: true}", "train.supervision=trace"]
    )
    assert config.model.scratchpad


def test_the_scratchpad_decoder_trains_evaluates_and_solves_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from th1nker.cli import app

    experiment = Path(__file__).parents[1] / "configs" / "experiments" / "tiny_scratchpad.yaml"
    runner = CliRunner()
    result = runner.invoke(
        app, ["train", "--config", str(experiment), f"train.runs_dir={tmp_path}"]
    )
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    result = runner.invoke(app, ["eval", str(run), "--n", "50", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total"] == 50
    result = runner.invoke(app, ["solve", "12*34", "7*8", "--checkpoint", str(run), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [row["expected"] for row in rows] == ["408", "56"]


def test_length_buckets_change_the_padding_not_the_loss_or_its_gradient():
    factorization = [{"type": "factorize", "factors": [1, 15], "max_number": 65535,
                      "sampling": "log_uniform"}]  # fmt: skip
    _, batch = traced(factorization, n=48)
    losses, grads = [], []
    for buckets in (1, 3, 48):
        torch.manual_seed(0)
        model = DecoderOnly(DecoderConfig(**TINY, scratchpad=True, length_buckets=buckets))
        model.eval()  # no random offsets: the same inputs in every bucketing
        loss, stats, _ = model.loss(batch, None)
        loss.backward()
        losses.append((loss.item(), stats.correct, stats.tokens))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    for k in (1, 2):  # float32 sums in another order: equal to rounding
        assert losses[k][0] == pytest.approx(losses[0][0], rel=1e-6)
        assert losses[k][1:] == losses[0][1:]
        assert torch.allclose(grads[k], grads[0], rtol=1e-4, atol=1e-7)


def test_evaluation_tabulates_each_conversion_in_numeric_order():
    task = scheme(
        generators=[{"type": "base_convert", "digits": [1, 6], "trace": "hub"}],
        bases={"values": [2, 10, 16]},
    )
    model = DecoderOnly(DecoderConfig(**TINY, scratchpad=True, max_scratchpad=64))
    result = evaluate(model, task, "test", 90, 45, seed=1)
    by = result.by["conversion"]
    assert list(by) == ["2->10", "2->16", "10->2", "10->16", "16->2", "16->10"]
    assert sum(total for _, total in by.values()) == 90
    assert "conversion" not in evaluate(model, scheme(), "test", 20, 20, seed=1).by
