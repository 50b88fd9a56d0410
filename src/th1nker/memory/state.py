"""The memory contract: state passes in and out, nothing is kept in the module.

Every part that carries state from step to step (memories, controllers, networks) is a
`Stateful` module whose state is a dict of tensors, batch-first (typed per module with a
TypedDict; a network's state nests its modules' states):

    state = module.init_state(batch_size, device)   # a fresh state
    y, state = module(x, state)                      # one step: the new state is returned
    state = reset_state(module, state, rows)         # rows [batch] bool: those rows start afresh
    state = detach_state(state)                      # cut the graph (truncated backpropagation)

Like DeepMind's dnc, x-transformers and titans-pytorch, a module never mutates hidden state, so
the same module can run several sequences at once and a step is a pure function of its inputs.
Parameters are not state: they save and load with torch's `state_dict()`.

A memory also says how wide its interface and its output are (`interface_size`, `output_size`)
and how many read vectors it returns (`reads`); controllers say their `hidden` width.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

State = dict[str, Any]  # tensors, or the nested states of a network's modules


class Stateful(nn.Module, metaclass=abc.ABCMeta):
    """A module with a dict of state tensors that `forward(x, state)` takes and returns (a
    subclass must define `forward`)."""

    def initial_state(self, batch_size: int, device: torch.device) -> State:
        """A fresh state for `batch_size` rows (override; a stateless part returns {})."""
        return {}

    def init_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        """A fresh state on `device`."""
        return self.initial_state(batch_size, torch.device(device))

    @abc.abstractmethod
    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step: the output and the new state."""


def detach_state(state: State) -> State:
    """The same state cut from the autograd graph (nested dicts included)."""
    return {
        key: detach_state(value) if isinstance(value, dict) else value.detach()
        for key, value in state.items()
    }


def _where_rows(rows: Bool[Tensor, " batch"], fresh: Any, old: Any) -> Any:
    if isinstance(old, dict):
        return {key: _where_rows(rows, fresh[key], value) for key, value in old.items()}
    return torch.where(rows.view(-1, *[1] * (old.dim() - 1)), fresh, old)


def reset_state(module: Stateful, state: State, rows: Bool[Tensor, " batch"]) -> State:
    """`state` with `rows` replaced by a fresh state (the other rows go on)."""
    return _where_rows(rows, module.init_state(len(rows), rows.device), state)


class Recurrent(Stateful):
    """A Stateful whose `forward(x_t, state)` is one step; `run` applies it along a sequence."""

    def run(
        self,
        xs: Float[Tensor, "batch time input"],
        state: State | None = None,
        detach_every: int = 0,
    ) -> tuple[Tensor, State]:
        """All steps of `xs` (from a fresh state unless `state` is given): the outputs stacked
        on dim 1 and the last state. With `detach_every` k, the state is cut from the graph
        every k steps (truncated backpropagation)."""
        if state is None:
            state = self.init_state(xs.shape[0], xs.device)
        outputs = []
        for t in range(xs.shape[1]):
            if detach_every and t and t % detach_every == 0:
                state = detach_state(state)
            y, state = self(xs[:, t], state)
            outputs.append(y)
        return torch.stack(outputs, dim=1), state
