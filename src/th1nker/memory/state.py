"""`Stateful`: the one base class of every part that carries state from step to step.

A stateful module keeps its state in one dict of tensors, `self.state` (typed per module with a
TypedDict), the only copy of that state: no attribute twins. Subclasses say what a fresh state is
(`initial_state`); the base class does the rest once for all, by iterating the dict, for the
module and every stateful module inside it:

    net.init_state(batch_size, device)   # fresh state everywhere (remembers batch and device)
    net.reset_state()                    # back to the fresh state, same batch and device
    net.detach_state()                   # cut the graph (truncated backpropagation)

Parameters are not state: they save and load with torch's own `state_dict()`, which this class
does not shadow (the attribute is `state`, and it is not a buffer).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from jaxtyping import Float
from torch import Tensor, nn


class Stateful(nn.Module):
    """A module with a dict of state tensors, batch-first."""

    def __init__(self):
        super().__init__()
        self.state: dict[str, Tensor] | None = None
        self._shape: tuple[int, torch.device] | None = None

    def initial_state(self, batch_size: int, device: torch.device) -> dict[str, Tensor]:
        """A fresh state for `batch_size` rows (override; a stateless part returns {})."""
        return {}

    def stateful_modules(self) -> Iterator[Stateful]:
        """This module and every Stateful module inside it."""
        return (m for m in self.modules() if isinstance(m, Stateful))

    def init_state(self, batch_size: int, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        for module in self.stateful_modules():
            module.state = module.initial_state(batch_size, device)
            module._shape = (batch_size, device)

    def reset_state(self) -> None:
        for module in self.stateful_modules():
            if module._shape is None:
                raise RuntimeError(f"{type(module).__name__}: reset_state before init_state")
            module.state = module.initial_state(*module._shape)

    def detach_state(self) -> None:
        for module in self.stateful_modules():
            if module.state is not None:
                module.state = {key: value.detach() for key, value in module.state.items()}

    def require_state(self) -> dict[str, Tensor]:
        """The current state; a clear error if init_state was never called."""
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}: call init_state(batch_size) first")
        return self.state


class Recurrent(Stateful):
    """A Stateful whose `forward(x_t)` is one step; `run` applies it along a sequence."""

    def run(self, xs: Float[Tensor, "batch time input"], detach_every: int = 0) -> Tensor:
        """All steps of `xs` from a fresh state, outputs stacked on dim 1; with `detach_every`
        k, the state is cut from the graph every k steps (truncated backpropagation)."""
        self.init_state(xs.shape[0], xs.device)
        outputs = []
        for t in range(xs.shape[1]):
            if detach_every and t and t % detach_every == 0:
                self.detach_state()
            outputs.append(self(xs[:, t]))
        return torch.stack(outputs, dim=1)
