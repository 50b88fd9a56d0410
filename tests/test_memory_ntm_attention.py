"""NTM addressing (shift, interpolation, sharpening, erase/add) and the read-only attention
memory (softmax, top-k, nothing written)."""

import pytest
import torch
from helpers import Stepper

from th1nker.memory import addressing
from th1nker.memory.attention_memory import AttentionMemory
from th1nker.memory.ntm import NTMMemory

BIG = 30.0


def head_slice(width, key=None, beta=BIG, interpolate=BIG, shift=0, gamma=BIG):
    key = torch.zeros(width) if key is None else key
    shifts = torch.full((3,), -BIG)
    shifts[shift + 1] = BIG
    return torch.cat([key, torch.tensor([beta, interpolate]), shifts, torch.tensor([gamma])])


def test_shifts_move_the_weighting_circularly():
    weights = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]])
    right = torch.tensor([[[0.0, 0.0, 1.0]]])  # shift +1
    left = torch.tensor([[[1.0, 0.0, 0.0]]])  # shift -1
    assert addressing.shift_weighting(weights, right).tolist() == [[[0.0, 0.0, 1.0, 0.0]]]
    assert addressing.shift_weighting(weights, left).tolist() == [[[1.0, 0.0, 0.0, 0.0]]]
    wrap = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]])
    assert addressing.shift_weighting(wrap, right).tolist() == [[[1.0, 0.0, 0.0, 0.0]]]


def test_sharpening_concentrates_and_keeps_a_distribution():
    weights = torch.tensor([[[0.1, 0.6, 0.3]]])
    sharp = addressing.sharpen(weights, torch.tensor([[5.0]]))
    torch.testing.assert_close(sharp.sum(-1), torch.ones(1, 1))
    assert sharp[0, 0, 1] > 0.95


def test_an_ntm_head_walks_the_memory_by_location():
    """Write a vector by content, then shift right each step: the read head visits the next
    slots in order (location addressing with the interpolation gate closed)."""
    memory = Stepper(NTMMemory(slots=5, width=5, reads=1, writes=1))
    memory.state["memory"] = torch.eye(5)[None]  # slot i holds e_i
    no_write = torch.cat([head_slice(5), torch.full((5,), -BIG), torch.zeros(5)])
    read = memory(torch.cat([no_write, head_slice(5, key=torch.eye(5)[1])])[None])
    visited = [int(read[0].argmax())]
    for _ in range(4):
        step = head_slice(5, interpolate=-BIG, shift=1)  # keep the last weighting, shift by +1
        read = memory(torch.cat([no_write, step])[None])
        visited.append(int(read[0].argmax()))
    assert visited == [1, 2, 3, 4, 0]


def test_ntm_slots_become_different_from_a_constant_memory():
    """From the constant init, random interfaces must write different things to different slots:
    a head starting uniform would keep every slot identical (the memory would be one slot)."""
    torch.manual_seed(0)
    memory = Stepper(NTMMemory(slots=8, width=4, reads=1, writes=1), 3)
    for _ in range(6):
        memory(torch.randn(3, memory.module.interface_size))
    rows = memory.state["memory"]
    assert (rows - rows[:, :1]).abs().amax(dim=(1, 2)).min() > 1e-3


def test_ntm_start_weighting_is_learned():
    memory = NTMMemory(slots=6, width=4, reads=1, writes=1)
    state = memory.init_state(2)
    torch.testing.assert_close(state["read_weights"].sum(-1), torch.ones(2, 1))
    memory(torch.randn(2, memory.interface_size), state)[0].sum().backward()
    assert memory.readers[0].start.grad.abs().sum() > 0
    assert memory.writers[0].start.grad.abs().sum() > 0


def test_ntm_erase_and_add():
    memory = Stepper(NTMMemory(slots=3, width=2, reads=1, writes=1))
    state = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [0.5, 0.5]]])
    memory.state["memory"] = state.clone()
    target = head_slice(2, key=torch.tensor([3.0, 4.0]), beta=200.0)
    write = torch.cat([target, torch.full((2,), BIG), torch.tensor([7.0, 8.0])])
    memory(torch.cat([write, head_slice(2)])[None])
    torch.testing.assert_close(
        memory.state["memory"][0, 1], torch.tensor([7.0, 8.0]), atol=1e-3, rtol=0
    )
    torch.testing.assert_close(memory.state["memory"][0, 0], state[0, 0], atol=1e-3, rtol=0)


def test_attention_memory_reads_softmax_or_top_k_and_writes_nothing():
    torch.manual_seed(0)
    memory = AttentionMemory(slots=6, width=3, reads=2)
    before = [p.clone() for p in memory.parameters()]
    query = torch.randn(4, memory.interface_size)
    out, _ = memory(query, memory.init_state(4))
    assert out.shape == (4, 6)
    q0 = query[:, : memory.keys.shape[1]]
    expected = torch.softmax(q0 @ memory.keys.T / 3**0.5, -1) @ memory.values
    torch.testing.assert_close(out[:, :3], expected)
    assert all(torch.equal(a, b) for a, b in zip(before, memory.parameters(), strict=True))
    top = AttentionMemory(slots=6, width=3, reads=1, flags={"top_k": 2})
    _, state = top(torch.randn(4, top.interface_size), top.init_state(4))
    assert ((state["read_weights"] > 0).sum(-1) == 2).all()


def test_bad_interfaces_are_clear_errors():
    memory = Stepper(NTMMemory(slots=3, width=2))
    with pytest.raises(ValueError, match="NTM memory: interface has 2 features"):
        memory(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="attention memory: interface has 5 features"):
        Stepper(AttentionMemory(width=4))(torch.zeros(1, 5))
