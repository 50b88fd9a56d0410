"""Compiler stage 5: the compiled program as a PyTorch transformer of plain ops.

    residual = token_embedding(ids) + position_embedding(positions)          [batch, time, D]
    for each layer:  residual += attention(residual);  residual += mlp(residual)

attention: heads with W_Q, W_K [heads, D, d_head], W_V [heads, D, d_value], W_O [heads, d_value,
D], and per head a sink (a persistent key/value that every query sees, in place of tracr's BOS
token); scaled_dot_product_attention with scale 1 (the scores carry the coldness), padding keys
masked, causal if compiled so. mlp: Linear -> ReLU -> Linear. Every weight is a parameter, so the
compiled model can be fine-tuned like a trained one.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn
from torch.nn import functional as F


class CompiledAttention(nn.Module):
    """Multi-head attention with one sink key/value per head (module docstring)."""

    def __init__(self, d_model: int, heads: int, d_head: int, d_value: int):
        super().__init__()
        self.w_q = nn.Parameter(torch.zeros(heads, d_model, d_head))
        self.w_k = nn.Parameter(torch.zeros(heads, d_model, d_head))
        self.w_v = nn.Parameter(torch.zeros(heads, d_model, d_value))
        self.w_o = nn.Parameter(torch.zeros(heads, d_value, d_model))
        self.sink_key = nn.Parameter(torch.zeros(heads, d_head))
        self.sink_value = nn.Parameter(torch.zeros(heads, d_value))

    def forward(
        self,
        x: Float[Tensor, "batch time dim"],
        mask: Bool[Tensor, "batch queries keys"],
    ) -> Float[Tensor, "batch time dim"]:
        batch = x.shape[0]
        q = torch.einsum("btd,hde->bhte", x, self.w_q)
        k = torch.einsum("btd,hde->bhte", x, self.w_k)
        v = torch.einsum("btd,hde->bhte", x, self.w_v)
        sink_k = self.sink_key[None, :, None].expand(batch, -1, -1, -1)
        sink_v = self.sink_value[None, :, None].expand(batch, -1, -1, -1)
        k, v = torch.cat((sink_k, k), dim=2), torch.cat((sink_v, v), dim=2)
        sees = torch.cat((torch.ones_like(mask[..., :1]), mask), dim=-1)[:, None]
        heads = F.scaled_dot_product_attention(q, k, v, attn_mask=sees, scale=1.0)
        return torch.einsum("bhte,hed->btd", heads, self.w_o)


class CompiledLayer(nn.Module):
    def __init__(self, attention: CompiledAttention | None, mlp: nn.Sequential | None):
        super().__init__()
        self.attention, self.mlp = attention, mlp

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.attention is not None:
            x = x + self.attention(x, mask)
        if self.mlp is not None:
            x = x + self.mlp(x)
        return x


class CompiledTransformer(nn.Module):
    """token ids [batch, time] (+ a padding mask) -> residual streams [batch, time, D]."""

    def __init__(
        self, d_model: int, vocab_size: int, max_seq_len: int, layers: list[CompiledLayer],
        causal: bool,
    ):  # fmt: skip
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_seq_len, d_model)
        self.layers = nn.ModuleList(layers)
        self.causal = causal
        self.max_seq_len = max_seq_len

    def forward(
        self,
        ids: Int[Tensor, "batch time"],
        valid: Bool[Tensor, "batch time"],
        every_layer: bool = False,
    ) -> Float[Tensor, "batch time dim"] | list[Tensor]:
        """The final residual stream (`every_layer`: the stream after the embedding and after
        each layer, a list of len(layers) + 1)."""
        time = ids.shape[1]
        if time > self.max_seq_len:
            raise ValueError(f"{time} tokens: this program was compiled for at most "
                             f"{self.max_seq_len}")  # fmt: skip
        positions = torch.arange(time, device=ids.device)
        x = self.token_embedding(ids) + self.position_embedding(positions)[None]
        mask = valid[:, None, :].expand(-1, time, -1)
        if self.causal:
            mask = mask & torch.ones(time, time, dtype=torch.bool, device=ids.device).tril()
        streams = [x]
        for layer in self.layers:
            x = layer(x, mask)
            streams.append(x)
        return streams if every_layer else x
