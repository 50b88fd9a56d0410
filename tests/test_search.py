"""Verified search: only answers that pass the verifier count as verified, the greedy answer
comes first, samples are drawn only for the rows still unverified, and tasks without a
verifier are refused by name."""

import json
import random
from typing import Literal

import pytest
import torch
from reference import trial_division
from typer.testing import CliRunner

from th1nker.cli import app
from th1nker.models.config import ModelConfig
from th1nker.models.family import Family, FamilyConfig
from th1nker.models.th1nker import Th1nker
from th1nker.search import verified_search
from th1nker.tasks.checking import check_answer, verify_answer
from th1nker.tasks.notation import encode_problems
from th1nker.tasks.numbers import encode_number
from th1nker.tasks.vocab import EOS, MUL, PAD, POW

WIDTH = 24


def written(factors: list[tuple[int, int]]) -> list[int]:
    """`p^e*q...` tokens of a factorization in base 10, then eos, pad-filled to WIDTH."""
    tokens = []
    for k, (p, e) in enumerate(factors):
        tokens += ([MUL] if k else []) + encode_number(p, 10)
        tokens += [POW, *encode_number(e, 10)] if e != 1 else []
    return (tokens + [EOS] + [PAD] * WIDTH)[:WIDTH]


class CandidatesConfig(FamilyConfig):
    kind: Literal["candidates"] = "candidates"


class Candidates(Family):
    """A stand-in model whose samples come from a list per problem, in order, and that records
    which rows it was asked for."""

    config_class = CandidatesConfig

    def __init__(self, per_row: list[list[list[int]]]):
        super().__init__(CandidatesConfig())
        self.per_row, self.drawn, self.asked = per_row, [0] * len(per_row), []

    def loss(self, batch, carry):
        raise NotImplementedError

    def generate(self, *args, **kwargs):
        raise NotImplementedError

    def sample(self, input_ids, input_mask, steps, max_answer, temperature, generator):
        rows = [self.row_of(ids, mask) for ids, mask in zip(input_ids, input_mask, strict=True)]
        self.asked.append(rows)
        out = []
        for row in rows:
            self.drawn[row] += 1
            out.append(self.per_row[row][min(self.drawn[row], len(self.per_row[row])) - 1])
        return torch.tensor(out)

    def row_of(self, ids, mask):
        return self.inputs.index(ids[mask].tolist())


def test_only_verified_candidates_are_returned_as_verified():
    rng = random.Random(0)
    numbers = rng.sample(range(2, 5000), 300)  # distinct: the stand-in finds rows by input
    batch = encode_problems([f"factor {n}" for n in numbers]).to_tensors()
    truths = [trial_division(n) for n in numbers]
    wrong = [[(4, 1)], [(2, 1), (3, 1)], [(7, 0)], [(6, 1)]]

    def right(n):
        return [(p, truths[n].count(p)) for p in sorted(set(truths[n]))]

    greedy = torch.tensor([written(rng.choice([right(i), *wrong])) for i in range(300)])
    per_row = [[written(rng.choice([right(i)] + wrong * 3)) for _ in range(7)] for i in range(300)]
    model = Candidates(per_row)
    model.inputs = [batch["input_ids"][i][batch["input_mask"][i]].tolist() for i in range(300)]
    found = verified_search(model, batch, greedy, candidates=8)
    inputs = model.inputs
    for i in range(300):
        verdict = verify_answer("factorize", inputs[i], found.answers[i].tolist(), 10)
        assert verdict.correct == bool(found.verified[i])
        if not found.verified[i]:
            assert found.candidate[i] == -1 and torch.equal(found.answers[i], greedy[i])
            assert found.tried[i] == 8
        else:
            assert found.tried[i] == found.candidate[i] + 1 <= 8
        greedy_right = verify_answer("factorize", inputs[i], greedy[i].tolist(), 10).correct
        assert (found.candidate[i] == 0) == greedy_right
    # samples are drawn only for the rows no earlier candidate verified
    assert all(found.candidate[row] < 0 or found.candidate[row] >= k + 1
               for k, rows in enumerate(model.asked) for row in rows)  # fmt: skip
    assert 0.3 < found.verified.float().mean() < 1.0


def test_the_verifier_needs_no_answer_and_refuses_tasks_it_cannot_verify():
    inputs = encode_problems(["factor 360"]).to_tensors()["input_ids"][0].tolist()
    for answer in ([(2, 3), (3, 2), (5, 1)], [(5, 1), (2, 1), (3, 2), (2, 2)], [(2, 3), (45, 1)]):
        tokens = written(answer)
        assert (verify_answer("factorize", inputs, tokens, 10)
                == check_answer("factorize", inputs, [], tokens, 10))  # fmt: skip
    assert verify_answer("factorize", inputs, written([(2, 3), (45, 1)]), 10).reason == (
        "factor 45 is not prime"
    )
    assert "malformed" in verify_answer("factorize", inputs, [POW, POW, EOS], 10).reason
    with pytest.raises(ValueError, match="task 'arithmetic' cannot be verified"):
        verify_answer("arithmetic", [], [1, EOS], 10)
    batch = encode_problems(["12+3"]).to_tensors()
    with pytest.raises(ValueError, match="task 'arithmetic' has no verifier"):
        verified_search(Candidates([]), batch, batch["target_ids"], candidates=4)


def test_a_family_that_cannot_sample_says_so():
    batch = encode_problems(["factor 91"]).to_tensors()
    model = Th1nker(ModelConfig(dim=32, n_layers=1, n_heads=2, latent=8, mem_cache_size=16))
    with pytest.raises(ValueError, match="model family 'th1nker' cannot sample answers"):
        verified_search(model, batch, torch.full((1, 8), PAD), candidates=2)


@pytest.fixture(scope="module")
def factor_run(tmp_path_factory):
    """A decoder trained for a few steps on factorization (wrong most of the time)."""
    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, [
        "train", "--config", "configs/experiments/factorize_scratchpad.yaml",
        "model.dim=32", "model.n_layers=1", "model.n_heads=2", "model.max_scratchpad=48",
        "train.max_steps=20", "train.max_minutes=null", "train.eval_every=1000", "eval.examples=50",
        "eval.final_examples=50", "train.tensorboard=false", f"train.runs_dir={runs}",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return next(runs.iterdir())


def test_eval_reports_verified_at_k_beside_greedy(factor_run):
    args = ["eval", str(factor_run), "--n", "60", "--json"]
    greedy = json.loads(CliRunner().invoke(app, args).stdout)
    searched = json.loads(CliRunner().invoke(app, [*args, "--sample", "4"]).stdout)
    assert searched["accuracy"] == greedy["accuracy"]  # greedy top-1 is unchanged
    assert searched["candidates"] == 4 and "candidates" not in greedy
    assert searched["verified"] >= searched["correct"]  # the greedy answer is candidate 0
    by = searched["by"]["smallest_factor"]
    assert sum(v["total"] for v in by.values()) == 60 and list(by)[0] == "2-3"
    assert sum(v["verified"] for v in by.values()) == searched["verified"]
    text = CliRunner().invoke(app, [*args[:-1], "--sample", "4"]).stdout
    assert "verified@4" in text and "by smallest_factor" in text and "by bits" in text


def test_solve_searches_factorizations_and_says_which_candidate(factor_run):
    args = ["solve", "factor 91", "factor 64", "7+8", "--checkpoint", str(factor_run)]
    result = CliRunner().invoke(app, [*args, "--sample", "3", "--json"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [("verified" in r) for r in rows] == [True, True, False]  # 7+8: no verifier
    for row in rows[:2]:
        assert row["verified"] == row["correct"]  # for a factorization, verified = right
        assert 1 <= row["candidates_tried"] <= 3
    text = CliRunner().invoke(app, [*args, "--sample", "3"]).stdout
    assert text.count("verified (candidate") + text.count("unverified after 3") == 2
