from collections import Counter

import numpy as np
import pytest
import torch
from helpers import records, scheme
from reference import read_number

from th1nker.tasks.scheme import SchemeError, load_scheme
from th1nker.tasks.stream import ProblemStream, make_loader
from th1nker.tasks.vocab import PAD

MIXED = "configs/tasks/mixed.yaml"


def _batches(loader, k):
    return [b for _, b in zip(range(k), loader, strict=False)]


def test_same_seed_same_batches_for_any_worker_count():
    task_scheme = load_scheme(MIXED)
    single = _batches(make_loader(task_scheme, batch_size=64, seed=3, num_batches=5), 5)
    again = _batches(make_loader(task_scheme, batch_size=64, seed=3, num_batches=5), 5)
    workers = _batches(
        make_loader(task_scheme, batch_size=64, seed=3, num_workers=2, num_batches=5), 5
    )
    other = _batches(make_loader(task_scheme, batch_size=64, seed=4, num_batches=5), 5)
    assert len(single) == len(workers) == 5
    for a, b, c, _d in zip(single, again, workers, other, strict=True):
        assert a.keys() == b.keys() == c.keys()
        for key in a:
            assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key])
    assert not torch.equal(single[0]["input_ids"], other[0]["input_ids"])


def test_batches_are_padded_with_masks():
    batch = next(iter(make_loader(load_scheme(MIXED), batch_size=128)))
    for name in ("input", "target"):
        ids, mask = batch[f"{name}_ids"], batch[f"{name}_mask"]
        assert ids.dtype == torch.int64 and mask.dtype == torch.bool and ids.shape == mask.shape
        assert (ids[~mask] == PAD).all() and (ids[mask] != PAD).all()
        assert mask[:, 0].all() and mask.sum(1).max() == ids.shape[1]
    assert set(batch["task"].tolist()) == {0, 1, 2}
    assert batch["base"].shape == batch["digits"].shape == (128,)


def test_splits_never_share_a_problem():
    task_scheme = scheme(generators=[{"type": "arithmetic", "operands": [2, 2], "digits": [1, 2]}])
    seen = {}
    for split in ("train", "val", "test", "ood"):
        seen[split] = {tuple(r["input_ids"]) for r in records(task_scheme, 3000, split=split)}
    assert len(seen["train"]) > 2000  # a small space (100*100*3 expressions), heavily sampled
    for a in seen:
        for b in seen:
            if a < b and {a, b} != {"val", "ood"} and {a, b} != {"test", "ood"}:
                assert not seen[a] & seen[b], (a, b)


def test_ood_draws_harder_problems():
    train = records([], 500)
    ood = records([], 500, split="ood")
    assert max(r["digits"] for r in train) == 10
    assert min(r["digits"] for r in ood) == 11 and max(r["digits"] for r in ood) == 20


def test_base_distribution_is_geometric():
    task_scheme = scheme(bases={"values": [2, 4, 10, 16], "distribution": [1, 10]}, max_length=256)
    counts = Counter(r["base"] for r in records(task_scheme, 20_000))
    assert 8 < counts[16] / counts[2] < 12.5
    assert counts[2] < counts[4] < counts[10] < counts[16]


def test_increase_base_re_encodes_problems_that_do_not_fit():
    task_scheme = scheme(bases={"values": [2, 16]}, max_length=40)
    rows = records(task_scheme, 2000)
    assert {r["base"] for r in rows} == {2, 16}
    for r in rows:
        assert len(r["input_ids"]) <= 40 and len(r["target_ids"]) <= 40
        assert read_number(r["target_ids"][:-1], r["out_base"]) == int(r["answer"])
    moved = [r for r in rows if r["base"] == 16]
    assert len(moved) > 1000  # base 2 is drawn half the time; long base-2 problems moved up


def test_overflow_error_strategy_refuses_with_a_clear_message():
    task_scheme = scheme(bases={"values": [2, 16]}, max_length=40, overflow_strategy="error")
    with pytest.raises(
        SchemeError, match=r"needs \d+ input and \d+ target tokens, more than max_length 40"
    ):
        records(task_scheme, 200)
    no_room = scheme(bases={"values": [2, 3]}, max_length=30)
    with pytest.raises(SchemeError, match="largest base 3"):
        records(no_room, 200)


def test_too_small_problem_space_for_a_split_is_a_clear_error():
    task_scheme = scheme(
        generators=[{"type": "arithmetic", "operands": 2, "digits": 1, "operations": "+"}]
    )
    with pytest.raises(SchemeError, match="problem space is too small"):
        ProblemStream(task_scheme, "val", batch_size=64).batch(0)


def test_bad_split_and_arguments():
    with pytest.raises(SchemeError, match="split 'dev' is not one of train, val, test, ood"):
        ProblemStream(scheme(), "dev")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        ProblemStream(scheme(), batch_size=0)


def test_generator_weights_mix_tasks():
    tasks = Counter(r["task"] for r in records(load_scheme(MIXED), 8000))
    assert tasks["arithmetic"] / tasks["factorize"] == pytest.approx(2, rel=0.15)
    assert tasks["factorize"] / tasks["base_convert"] == pytest.approx(1, rel=0.15)
    assert np.isfinite(list(tasks.values())).all()
