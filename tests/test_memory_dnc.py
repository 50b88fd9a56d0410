"""DNC memory: addressing against closed forms, allocation, links, erase, heads' weightings,
state handling (init / reset / detach, no mutation), flags."""

import numpy as np
import pytest
import torch
from helpers import Stepper

from th1nker.config_files import ConfigError
from th1nker.memory import addressing
from th1nker.memory.dnc import DNCMemory
from th1nker.memory.flags import DNCFlags, gate
from th1nker.memory.state import detach_state, reset_state

BIG = 20.0  # a gate input that saturates the sigmoid


def writer_slice(width, key=None, erase=-BIG, vector=None, allocate=BIG, write=BIG, beta=BIG):
    key = torch.zeros(width) if key is None else key
    vector = torch.zeros(width) if vector is None else vector
    scalars = torch.tensor([beta]), torch.full((width,), erase), vector
    return torch.cat([key, *scalars, torch.tensor([allocate, write])])


def reader_slice(width, key=None, mode="content", free=-BIG, beta=BIG):
    key = torch.zeros(width) if key is None else key
    modes = torch.full((3,), -BIG)
    modes[["backward", "content", "forward"].index(mode)] = BIG
    return torch.cat([key, torch.tensor([beta, free]), modes])


def step(memory: Stepper, *slices: torch.Tensor) -> torch.Tensor:
    return memory(torch.cat(slices)[None])


def test_allocation_matches_the_closed_form_and_prefers_the_least_used_slot():
    usage = torch.tensor([[0.9, 0.1, 0.5, 0.0, 0.7]], dtype=torch.float64)
    got = addressing.allocation_weighting(usage)[0].numpy()
    u = usage[0].numpy()
    order = np.argsort(u)
    expected = np.zeros(5)
    for j, slot in enumerate(order):
        expected[slot] = (1 - u[slot]) * np.prod(u[order[:j]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.argmax() == 3 and got.sum() <= 1 + 1e-9


def test_writes_go_to_free_slots_first():
    memory = Stepper(DNCMemory(slots=6, width=4, reads=1, writes=1))
    written = []
    for k in range(6):
        vector = torch.eye(4)[k % 4] + 1
        step(memory, writer_slice(4, vector=vector), reader_slice(4))
        written.append(int(memory.state["write_weights"][0, 0].argmax()))
    assert sorted(written) == list(range(6))  # every write found a new slot
    assert memory.state["usage"].min() > 0.99


def test_reading_forward_through_the_links_returns_the_write_order():
    memory = Stepper(DNCMemory(slots=5, width=5, reads=1, writes=1))
    vectors = torch.eye(5)
    slots = []
    for k in range(5):
        step(memory, writer_slice(5, vector=vectors[k]), reader_slice(5))
        slots.append(int(memory.state["write_weights"][0, 0].argmax()))
    # find the first vector by content, then follow the forward links
    read = step(memory, writer_slice(5, write=-BIG), reader_slice(5, key=vectors[0]))
    order = [int(read[0].argmax())]
    for _ in range(4):
        read = step(memory, writer_slice(5, write=-BIG), reader_slice(5, mode="forward"))
        order.append(int(read[0].argmax()))
    assert order == [0, 1, 2, 3, 4]
    backward = step(memory, writer_slice(5, write=-BIG), reader_slice(5, mode="backward"))
    assert int(backward[0].argmax()) == 3


def test_two_writers_take_different_slots_and_link_in_writer_order():
    """Writers write one after another within a step: the second allocates around the first,
    and the links run writer 1 -> writer 2 -> writer 1 of the next step."""
    memory = Stepper(DNCMemory(slots=6, width=6, reads=1, writes=2))
    vectors = torch.eye(6)
    for k in (0, 2):
        step(memory, writer_slice(6, vector=vectors[k]), writer_slice(6, vector=vectors[k + 1]),
             reader_slice(6))  # fmt: skip
        first, second = memory.state["write_weights"][0].argmax(-1).tolist()
        assert first != second
    idle = (writer_slice(6, write=-BIG), writer_slice(6, write=-BIG))
    read = step(memory, *idle, reader_slice(6, key=vectors[0]))
    order = [int(read[0].argmax())]
    for _ in range(3):
        order.append(int(step(memory, *idle, reader_slice(6, mode="forward"))[0].argmax()))
    assert order == [0, 1, 2, 3]


def test_erase_clears_a_slot():
    memory = Stepper(DNCMemory(slots=4, width=3, reads=1, writes=1))
    vector = torch.tensor([1.0, 2.0, 3.0])
    step(memory, writer_slice(3, vector=vector), reader_slice(3))
    slot = int(memory.state["write_weights"][0, 0].argmax())
    # write again by content (allocation gate closed) with full erase and nothing to add
    by_content = writer_slice(3, key=vector, erase=BIG, allocate=-BIG, beta=500.0)
    step(memory, by_content, reader_slice(3))
    weight = memory.state["write_weights"][0, 0, slot]
    assert weight > 0.97  # (slot 1 got a 1e-6 copy of the vector, so it shares the match)
    torch.testing.assert_close(memory.state["memory"][0, slot], vector * (1 - weight))
    kept = Stepper(DNCMemory(slots=4, width=3, reads=1, writes=1, flags={"erase": False}))
    step(kept, writer_slice(3, vector=vector), reader_slice(3))
    step(kept, by_content, reader_slice(3))
    assert kept.state["memory"][0].abs().max() > 2.9  # erase off: the vector stays


def test_readers_and_writers_keep_their_own_states():
    memory = Stepper(DNCMemory(slots=4, width=2, reads=2, writes=2))
    step(
        memory,
        writer_slice(2, vector=torch.tensor([1.0, 0.0])),
        writer_slice(2, vector=torch.tensor([0.0, 1.0])),
        reader_slice(2, key=torch.tensor([1.0, 0.0])),
        reader_slice(2, key=torch.tensor([0.0, 1.0])),
    )
    w0, w1 = memory.state["write_weights"][0].argmax(-1).tolist()
    r0, r1 = memory.state["read_weights"][0].argmax(-1).tolist()
    assert w0 != w1  # the second writer allocated another slot
    assert (r0, r1) == (w0, w1)  # each reader found its own vector


def test_reset_restores_the_initial_state_and_detach_stops_gradients():
    torch.manual_seed(0)
    memory = DNCMemory(slots=4, width=3, reads=1, writes=1)
    initial = memory.init_state(2)
    interface = torch.randn(2, memory.interface_size, requires_grad=True)
    _, state = memory(interface, initial)
    assert state["memory"].grad_fn is not None
    state = detach_state(state)
    assert not any(v.requires_grad for v in state.values())
    out, state = memory(torch.randn(2, memory.interface_size), state)
    assert not out.requires_grad  # nothing reaches back to `interface`
    moved = {k: v.clone() for k, v in state.items()}
    state = reset_state(memory, state, torch.tensor([True, False]))
    for key, value in initial.items():
        torch.testing.assert_close(state[key][0], value[0])  # row 0 starts afresh
        torch.testing.assert_close(state[key][1], moved[key][1])  # row 1 goes on
    assert state["read_weights"][0].abs().sum() == 0


def test_a_step_mutates_nothing_and_is_re_entrant():
    torch.manual_seed(0)
    memory = DNCMemory(slots=4, width=3, reads=2, writes=1)
    interface = torch.randn(2, memory.interface_size)
    state = memory.init_state(2)
    before = {k: v.clone() for k, v in state.items()}
    first, after = memory(interface, state)
    second, _ = memory(interface, state)  # the same state again: the same step
    torch.testing.assert_close(first, second)
    for key, value in before.items():
        torch.testing.assert_close(state[key], value)  # the input state is untouched
    assert not any(torch.equal(after[k], before[k]) for k in ("memory", "usage"))


def test_memory_maths_gradcheck_in_float64():
    torch.manual_seed(0)
    d = {"dtype": torch.float64, "requires_grad": True}
    memory, keys, beta = torch.randn(2, 5, 3, **d), torch.randn(2, 2, 3, **d), torch.rand(2, 2, **d)
    assert torch.autograd.gradcheck(addressing.content_weighting, (memory, keys, beta))
    usage = torch.tensor([[0.1, 0.5, 0.3, 0.8]], **d)
    assert torch.autograd.gradcheck(addressing.allocation_weighting, (usage,))
    link, precedence, w = torch.rand(1, 4, 4, **d), torch.rand(1, 4, **d), torch.rand(1, 4, **d)
    assert torch.autograd.gradcheck(addressing.update_link, (link, precedence, w / 4))


def test_empty_memory_and_zero_keys_give_no_nan():
    memory = DNCMemory(slots=4, width=3, reads=2, writes=1)
    out, _ = memory(torch.zeros(2, memory.interface_size), memory.init_state(2))
    assert torch.isfinite(out).all()


def test_flags_are_validated_and_gates_behave():
    with pytest.raises(ConfigError, match="flags.eraze: unknown field; allowed: normalize"):
        DNCMemory(flags={"eraze": False})
    with pytest.raises(ConfigError, match="gate: Input should be 'sigmoid'"):
        DNCMemory(flags={"gate": "step"})
    x = torch.tensor([-1.0, 0.5], requires_grad=True)
    hard = gate(x, DNCFlags(gate="heaviside"))
    assert hard.tolist() == [0.0, 1.0]
    hard.sum().backward()
    assert (x.grad > 0).all()  # straight-through: the steep sigmoid's gradient
    with pytest.raises(ConfigError, match="flags.top_k: unknown field"):
        DNCMemory(flags={"top_k": 2})  # an attention-memory flag: not the DNC's
    memory = Stepper(DNCMemory(slots=3, width=2, flags={"beta": 5.0}))
    memory(torch.zeros(1, memory.module.interface_size))
    assert memory.state["read_weights"].shape == (1, 1, 3)


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ConfigError, match="slots: Input should be greater than or equal to 1"):
        DNCMemory(slots=0)
    memory = Stepper(DNCMemory(slots=3, width=2))
    with pytest.raises(ValueError, match="interface has 3 features, expected"):
        memory(torch.zeros(1, 3))
