"""Attention with rotary positions on part of each head, and the pre-norm blocks built from it.

Rotary embeddings (Su et al. 2021, RoFormer) rotate query and key features by angles proportional
to a position, so a query-key score depends on the *difference* of positions. Only the first
`rotary_fraction` of each head's features rotate; the rest match on content alone, which lets a
latent find an operator token wherever it sits.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn


class Rotary(nn.Module):
    """Rotation of the first `rotary_dim` features of each head by position * frequency."""

    def __init__(self, rotary_dim: int, base: float = 100.0):
        super().__init__()
        self.rotary_dim = rotary_dim
        frequencies = base ** (-torch.arange(0, rotary_dim, 2).float() / max(rotary_dim, 1))
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(
        self, x: Float[Tensor, "batch heads seq head_dim"], positions: Int[Tensor, "batch seq"]
    ) -> Float[Tensor, "batch heads seq head_dim"]:
        if self.rotary_dim == 0:
            return x
        angles = positions[:, None, :, None].float() * self.frequencies  # b 1 s r/2
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        rotated, rest = x[..., : self.rotary_dim], x[..., self.rotary_dim :]
        even, odd = rotated[..., 0::2], rotated[..., 1::2]
        turned = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
        return torch.cat((turned.flatten(-2), rest), dim=-1)


class KeyValues(NamedTuple):
    """The rotated keys and the values of a context for one attention module, in heads form
    [batch, heads, keys, head_dim]: computed once, read by any number of queries."""

    keys: Float[Tensor, "batch heads keys hd"]
    values: Float[Tensor, "batch heads keys hd"]

    @property
    def length(self) -> int:
        return self.keys.shape[2]

    def joined(self, later: KeyValues) -> KeyValues:
        """These keys, then `later` ones."""
        return KeyValues(
            torch.cat((self.keys, later.keys), 2), torch.cat((self.values, later.values), 2)
        )

    def newest(self, n: int) -> KeyValues:
        """The last `n` keys and values."""
        start = self.length - n
        return KeyValues(self.keys[:, :, start:], self.values[:, :, start:])

    def rows(self, rows: Tensor | slice) -> KeyValues:
        """The keys and values of batch rows `rows` (an index tensor or a slice)."""
        return KeyValues(self.keys[rows], self.values[rows])

    def detach(self) -> KeyValues:
        return KeyValues(self.keys.detach(), self.values.detach())


class KVCache:
    """The rotated keys and values every attention module has seen so far, for decoding one
    token at a time without recomputing the prefix (one cache per sequence batch)."""

    def __init__(self):
        self.entries: dict[int, KeyValues] = {}

    def extend(self, module: nn.Module, new: KeyValues) -> KeyValues:
        """Append the new keys and values of `module`; return all of them."""
        if id(module) in self.entries:
            new = self.entries[id(module)].joined(new)
        self.entries[id(module)] = new
        return new


class Attention(nn.Module):
    """Multi-head attention of `x` over `context` (self-attention when they are the same)."""

    def __init__(self, dim: int, n_heads: int, rotary_fraction: float, dropout: float):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads, self.head_dim, self.dropout = n_heads, dim // n_heads, dropout
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.rotary = Rotary(2 * int(self.head_dim * rotary_fraction / 2))

    def _heads(self, x: Float[Tensor, "batch seq dim"]) -> Float[Tensor, "batch heads seq hd"]:
        return x.unflatten(-1, (self.n_heads, self.head_dim)).transpose(1, 2)

    def keys_values(
        self, context: Float[Tensor, "batch keys dim"], positions: Int[Tensor, "batch keys"]
    ) -> KeyValues:
        """The context projected to keys (rotated by `positions`) and values."""
        k, v = self.to_kv(context).chunk(2, dim=-1)
        return KeyValues(self.rotary(self._heads(k), positions), self._heads(v))

    def forward(
        self,
        x: Float[Tensor, "batch queries dim"],
        x_positions: Int[Tensor, "batch queries"],
        context: Float[Tensor, "batch keys dim"] | KeyValues,
        context_positions: Int[Tensor, "batch keys"] | None,
        mask: Bool[Tensor, "batch _ seen"] | None = None,
        cache: KVCache | None = None,
    ) -> Float[Tensor, "batch queries dim"]:
        """`mask[b, q, k]` True where query q may look at key k (None: everywhere). `context`
        may come projected already (`keys_values`; its positions are then None). With a
        `cache`, the keys and values of `context` are appended to those it holds and attention
        reads them all: `seen` counts the cached keys first, then the new ones."""
        q = self.rotary(self._heads(self.to_q(x)), x_positions)
        kv = (
            context
            if isinstance(context, KeyValues)
            else self.keys_values(context, context_positions)
        )
        if cache is not None:
            kv = cache.extend(self, kv)
        attn_mask = None if mask is None else mask[:, None]
        out = F.scaled_dot_product_attention(
            q,
            kv.keys,
            kv.values,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0,
        )
        return self.to_out(out.transpose(1, 2).flatten(-2))


class FeedForward(nn.Sequential):
    """Position-wise MLP: dim -> mlp_ratio * dim -> dim with GELU."""

    def __init__(self, dim: int, mlp_ratio: int, dropout: float):
        hidden = dim * mlp_ratio
        super().__init__(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )


class Block(nn.Module):
    """Pre-norm residual block: [self-attention] -> cross-attentions (one per context) -> MLP.

    `n_contexts` cross-attentions, each with its own norm, read from the contexts passed to
    forward in the same order (e.g. the input tokens, or the latent memory).
    """

    def __init__(
        self,
        dim: int,
        n_heads: int,
        rotary_fraction: float,
        dropout: float,
        self_attention: bool,
        n_contexts: int,
        mlp_ratio: int = 4,
    ):
        super().__init__()
        make = lambda: Attention(dim, n_heads, rotary_fraction, dropout)  # noqa: E731
        self.self_attention = make() if self_attention else None
        self.self_norm = nn.LayerNorm(dim) if self_attention else None
        self.cross = nn.ModuleList(make() for _ in range(n_contexts))
        self.cross_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(n_contexts))
        self.context_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(n_contexts))
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio, dropout)

    def forward(
        self,
        x: Float[Tensor, "batch queries dim"],
        positions: Int[Tensor, "batch queries"],
        contexts: list[tuple[Tensor | KeyValues, Tensor | None, Tensor | None]],
        self_mask: Bool[Tensor, "batch queries keys"] | None = None,
        cache: KVCache | None = None,
    ) -> Float[Tensor, "batch queries dim"]:
        """`contexts`: (values [batch, keys, dim], positions [batch, keys], mask or None) each,
        or (`context_keys(i, ...)`, None, mask) for a context projected once and read often.
        `cache`: the self-attention also reads the keys of earlier calls (`KVCache`).

        A context with no keys is skipped (an empty memory adds nothing).
        """
        if self.self_attention is not None:
            h = self.self_norm(x)
            x = x + self.self_attention(h, positions, h, positions, self_mask, cache)
        for attend, norm, context_norm, (values, value_positions, mask) in zip(
            self.cross, self.cross_norms, self.context_norms, contexts, strict=True
        ):
            if not isinstance(values, KeyValues):
                values = attend.keys_values(context_norm(values), value_positions)
            if values.length:
                x = x + attend(norm(x), positions, values, None, mask)
        return x + self.mlp(self.mlp_norm(x))

    def context_keys(
        self,
        index: int,
        values: Float[Tensor, "batch keys dim"],
        positions: Int[Tensor, "batch keys"],
    ) -> KeyValues:
        """Context `index` (normalised and projected) as its cross-attention reads it."""
        return self.cross[index].keys_values(self.context_norms[index](values), positions)
