"""Controllers: the networks that drive memories. Each is Stateful (its recurrent state in
`self.state`), maps an input [batch, input_size] to an output [batch, hidden], and knows nothing
of the memories it drives (they talk through interface vectors).

Run `python -m th1nker.memory.controllers` for a smoke check.
"""

from __future__ import annotations

from typing import TypedDict

import torch
from jaxtyping import Float
from torch import Tensor, nn

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

    def forward(self, x: Float[Tensor, "batch input"]) -> Float[Tensor, "batch hidden"]:
        state = self.require_state()
        h, c = self.cell(x, (state["h"], state["c"]))
        self.state = LSTMState(h=h, c=c)
        return h


class GRUController(Stateful):
    """One GRU cell; state h."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.GRUCell(input_size, hidden)

    def initial_state(self, batch_size: int, device: torch.device) -> GRUState:
        return GRUState(h=torch.zeros(batch_size, self.hidden, device=device))

    def forward(self, x: Float[Tensor, "batch input"]) -> Float[Tensor, "batch hidden"]:
        h = self.cell(x, self.require_state()["h"])
        self.state = GRUState(h=h)
        return h


class MLPController(Stateful):
    """Two layers, no recurrent state (the memory is its only recurrence)."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.net = nn.Sequential(
            nn.Linear(input_size, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.Tanh()
        )

    def forward(self, x: Float[Tensor, "batch input"]) -> Float[Tensor, "batch hidden"]:
        return self.net(x)


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

    def forward(self, x: Float[Tensor, "batch input"]) -> Float[Tensor, "batch hidden"]:
        token = self.embed(x)[:, None]
        history = torch.cat((self.require_state()["history"], token), dim=1)[:, -self.window :]
        self.state = TransformerState(history=history)
        h = token
        for i, (attention, mlp) in enumerate(zip(self.attention, self.mlps, strict=True)):
            context = self.norms[2 * i](history)
            h = h + attention(self.norms[2 * i](h), context, context, need_weights=False)[0]
            h = h + mlp(self.norms[2 * i + 1](h))
        return h[:, 0]


CONTROLLERS = {
    "lstm": LSTMController,
    "gru": GRUController,
    "mlp": MLPController,
    "transformer": TransformerController,
}


def _smoke() -> None:
    for name, kind in CONTROLLERS.items():
        controller = kind(5, 8)
        controller.init_state(3)
        out = controller(torch.randn(3, 5))
        assert out.shape == (3, 8)
        print(f"{name} controller ok: {tuple(out.shape)}, state {sorted(controller.state)}")


if __name__ == "__main__":
    _smoke()
