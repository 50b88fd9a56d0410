"""The episodic memory: one event per step, bounded, recalled by top-k retrieval, evicted by the
documented rule (oldest, least used, least surprising)."""

import pytest
import torch

from th1nker.memory.episodic import EMPTY, EpisodicMemory

KEYS = 6


def event(memory, key=None, value=None, queries=None):
    """One interface row: write (key, value), read with `queries` (zeros where not given)."""
    kw, w = memory.key_width, memory.spec.width
    key = torch.zeros(kw) if key is None else key
    value = torch.zeros(w) if value is None else value
    queries = torch.zeros(memory.reads * kw) if queries is None else queries
    return torch.cat((key, value, queries))[None]


def fill(memory, values, sharp=20.0):
    """Write event t with the t-th one-hot key (times `sharp`) and value `values[t]`."""
    state = memory.init_state(1)
    for t, value in enumerate(values):
        _, state = memory(event(memory, sharp * torch.eye(KEYS)[t], value), state)
    return state


def test_a_specific_earlier_event_is_recalled_exactly():
    memory = EpisodicMemory(slots=KEYS + 1, width=3, key_width=KEYS, top_k=1)
    values = [torch.randn(3) for _ in range(KEYS)]
    state = fill(memory, values)  # a slot stays free for the event each recall step writes
    for t in range(KEYS):
        read, _ = memory(event(memory, queries=torch.eye(KEYS)[t]), state)
        torch.testing.assert_close(read[0], values[t])


def test_top_k_blends_exactly_k_events_and_an_empty_memory_reads_zeros():
    memory = EpisodicMemory(slots=5, width=2, key_width=KEYS, top_k=2, reads=2)
    state = fill(memory, [torch.randn(2) for _ in range(4)])
    _, state = memory(event(memory, queries=torch.randn(2 * KEYS)), state)
    assert ((state["read_weights"] > 0).sum(-1) == 2).all()
    fresh = EpisodicMemory(slots=5, width=2, key_width=KEYS)
    read, _ = fresh(torch.zeros(1, fresh.interface_size), fresh.init_state(1))
    assert read.shape == (1, 2) and not read.isnan().any()


def written_times(state) -> list[int]:
    return sorted(state["times"][0].tolist())


def test_the_oldest_event_is_evicted_first():
    memory = EpisodicMemory(slots=3, width=1, key_width=KEYS)
    state = fill(memory, [torch.ones(1)] * 5)
    assert written_times(state) == [2, 3, 4]  # capacity 3: events 0 and 1 are gone
    assert EMPTY not in state["times"].tolist()


def test_the_least_used_event_is_evicted():
    memory = EpisodicMemory(slots=3, width=1, key_width=KEYS, eviction="least_used")
    state = fill(memory, [torch.ones(1)] * 3)  # zero queries: each read spreads evenly
    assert state["usage"][0].tolist() == pytest.approx([1 + 1 / 2 + 1 / 3, 1 / 2 + 1 / 3, 1 / 3])
    key = 20 * torch.eye(KEYS)
    _, state = memory(event(memory, key[3], queries=key[0]), state)
    assert written_times(state) == [0, 1, 3]  # event 2 was the least read
    _, state = memory(event(memory, key[4], queries=key[3]), state)
    assert written_times(state) == [0, 1, 4]  # event 3 was never read: gone, new as it is


def test_the_least_surprising_event_is_evicted():
    memory = EpisodicMemory(slots=3, width=1, key_width=KEYS, eviction="least_surprising")
    state = memory.init_state(1)
    key = 20 * torch.eye(KEYS)
    for k, v in [(key[0], 5.0), (key[0], 5.1), (key[1], -3.0)]:
        _, state = memory(event(memory, k, torch.tensor([v])), state)
    # event 1 repeated event 0's key with almost its value: surprise 0.1, the least; event 2's
    # key matches neither stored key, so the memory predicted their mean 5.05 for it
    assert state["surprise"][0].tolist() == pytest.approx([5.0, 0.1, 8.05], abs=1e-4)
    _, state = memory(event(memory, key[2], torch.tensor([1.0])), state)
    assert written_times(state) == [0, 2, 3]


def test_reads_send_gradients_to_the_event_that_was_stored():
    memory = EpisodicMemory(slots=4, width=2, key_width=KEYS, top_k=1)
    value = torch.randn(2, requires_grad=True)
    state = memory.init_state(1)
    _, state = memory(event(memory, 20 * torch.eye(KEYS)[0], value), state)
    read, _ = memory(event(memory, queries=torch.eye(KEYS)[0]), state)
    read.sum().backward()
    torch.testing.assert_close(value.grad, torch.ones(2))


def test_bad_fields_and_interfaces_are_refused():
    with pytest.raises(ValueError, match="eviction"):
        EpisodicMemory(eviction="random")
    memory = EpisodicMemory(slots=2, width=2)
    with pytest.raises(ValueError, match="interface has 3 features, expected 6"):
        memory(torch.zeros(1, 3), memory.init_state(1))
