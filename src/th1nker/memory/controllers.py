"""Controllers: the networks that drive memories. Each is Stateful (`h, state = c(x, state)`),
maps an input [batch, input_size] to an output [batch, hidden], and knows nothing of the memories
it drives (they talk through interface vectors). Each registers its spec (`type` and fields).

Run `python -m th1nker.memory.controllers` for a smoke check.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypedDict

import torch
from jaxtyping import Float
from pydantic import Field
from torch import Tensor, nn

from th1nker.memory.registry import ControllerSpec, register_controller
from th1nker.memory.state import Stateful


class LSTMState(TypedDict):
    h: Float[Tensor, "batch hidden"]
    c: Float[Tensor, "batch hidden"]


class GRUState(TypedDict):
    h: Float[Tensor, "batch hidden"]


class LSTMController(Stateful):
    """One LSTM cell; state h, c."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.LSTMCell(input_size, hidden)

    def initial_state(self, batch_size: int, device: torch.device) -> LSTMState:
        zeros = torch.zeros(batch_size, self.hidden, device=device)
        return LSTMState(h=zeros, c=zeros.clone())

    def forward(
        self, x: Float[Tensor, "batch input"], state: LSTMState
    ) -> tuple[Float[Tensor, "batch hidden"], LSTMState]:
        h, c = self.cell(x, (state["h"], state["c"]))
        return h, LSTMState(h=h, c=c)


class GRUController(Stateful):
    """One GRU cell; state h."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.GRUCell(input_size, hidden)

    def initial_state(self, batch_size: int, device: torch.device) -> GRUState:
        return GRUState(h=torch.zeros(batch_size, self.hidden, device=device))

    def forward(
        self, x: Float[Tensor, "batch input"], state: GRUState
    ) -> tuple[Float[Tensor, "batch hidden"], GRUState]:
        h = self.cell(x, state["h"])
        return h, GRUState(h=h)


class MLPController(Stateful):
    """Two layers, no recurrent state (the memory is its only recurrence)."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.net = nn.Sequential(
            nn.Linear(input_size, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.Tanh()
        )

    def forward(
        self, x: Float[Tensor, "batch input"], state: dict
    ) -> tuple[Float[Tensor, "batch hidden"], dict]:
        return self.net(x), state


class TransformerState(TypedDict):
    history: Float[Tensor, "batch past hidden"]


class TransformerController(Stateful):
    """A causal transformer over its own recent inputs: each step embeds the input, appends it
    to `history` (the last `window` embeddings, oldest evicted first) and lets it attend to the
    history (`layers` pre-norm blocks of one-query attention + MLP). State: the history."""

    def __init__(
        self, input_size: int, hidden: int, n_heads: int = 4, layers: int = 1, window: int = 16
    ):
        super().__init__()
        if hidden % n_heads or window < 1:
            raise ValueError(f"transformer controller: hidden {hidden} must divide by n_heads "
                             f"{n_heads}, window {window} must be >= 1")  # fmt: skip
        self.hidden, self.window = hidden, window
        self.embed = nn.Linear(input_size, hidden)
        self.attention = nn.ModuleList(
            nn.MultiheadAttention(hidden, n_heads, batch_first=True) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(2 * layers))
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))
            for _ in range(layers)
        )

    def initial_state(self, batch_size: int, device: torch.device) -> TransformerState:
        return TransformerState(history=torch.zeros(batch_size, 0, self.hidden, device=device))

    def forward(
        self, x: Float[Tensor, "batch input"], state: TransformerState
    ) -> tuple[Float[Tensor, "batch hidden"], TransformerState]:
        token = self.embed(x)[:, None]
        history = torch.cat((state["history"], token), dim=1)[:, -self.window :]
        h = token
        for i, (attention, mlp) in enumerate(zip(self.attention, self.mlps, strict=True)):
            context = self.norms[2 * i](history)
            h = h + attention(self.norms[2 * i](h), context, context, need_weights=False)[0]
            h = h + mlp(self.norms[2 * i + 1](h))
        return h[:, 0], TransformerState(history=history)


@register_controller
class LSTMSpec(ControllerSpec):
    type: Literal["lstm"] = "lstm"
    hidden: int = Field(ge=1)

    def build(self, input_size: int) -> LSTMController:
        return LSTMController(input_size, self.hidden)


@register_controller
class GRUSpec(ControllerSpec):
    type: Literal["gru"] = "gru"
    hidden: int = Field(ge=1)

    def build(self, input_size: int) -> GRUController:
        return GRUController(input_size, self.hidden)


@register_controller
class MLPSpec(ControllerSpec):
    type: Literal["mlp"] = "mlp"
    keeps_state: ClassVar[bool] = False
    hidden: int = Field(ge=1)

    def build(self, input_size: int) -> MLPController:
        return MLPController(input_size, self.hidden)


@register_controller
class TransformerSpec(ControllerSpec):
    type: Literal["transformer"] = "transformer"
    hidden: int = Field(ge=1)
    n_heads: int = Field(4, ge=1)
    layers: int = Field(1, ge=1)
    window: int = Field(16, ge=1)

    def build(self, input_size: int) -> TransformerController:
        return TransformerController(
            input_size, self.hidden, self.n_heads, self.layers, self.window
        )


def _smoke() -> None:
    for spec in (LSTMSpec, GRUSpec, MLPSpec, TransformerSpec):
        controller = spec(hidden=8).build(5)
        out, state = controller(torch.randn(3, 5), controller.init_state(3))
        assert out.shape == (3, 8)
        print(f"{spec.kind()} controller ok: {tuple(out.shape)}, state {sorted(state)}")


if __name__ == "__main__":
    _smoke()
