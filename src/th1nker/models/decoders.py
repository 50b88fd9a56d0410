"""write_out: two ways to turn the latents into an answer.

- `AutoregressiveDecoder`: the answer token by token. Query t reads the answer so far (causal
  self-attention; teacher forcing in training, greedy at inference) and cross-attends to the
  latents. Its rotary position is the significance of the digit it predicts, so the query for the
  digit of weight base^i looks at latent i.
- `ParallelSlotsDecoder`: `answer_slots` copies of the `probe` token at positions 0, 1, ... each
  predict one answer token at once (slot i: token i; bidirectional self-attention among slots).

Both return hidden states [batch, queries, dim]; the model's tied head turns them into logits.
docs/model.md compares the two (measured).
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from th1nker.models.attention import Block
from th1nker.models.config import ModelConfig
from th1nker.models.positions import next_digit_significance
from th1nker.tasks.vocab import PROBE, START_DECODE


class _Decoder(nn.Module):
    """Decoder blocks over answer queries: self-attention (masked by `self_mask`) among the
    queries, cross-attention to the latents, MLP. Subclasses say which queries and which mask."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(
                config.dim,
                config.n_heads,
                config.rotary_fraction,
                config.dropout,
                self_attention=True,
                n_contexts=1,
                mlp_ratio=config.mlp_ratio,
            )
            for _ in range(config.decoder_layers)
        )

    def self_mask(self, n: int, device: torch.device) -> Bool[Tensor, "n n"] | None:
        """Which query may look at which (None: all at all)."""
        return None

    def forward(
        self,
        queries: Float[Tensor, "batch queries dim"],
        query_positions: Int[Tensor, "batch queries"],
        latents: Float[Tensor, "batch latents dim"],
        latent_positions: Int[Tensor, "batch latents"],
    ) -> Float[Tensor, "batch queries dim"]:
        batch, n, _ = queries.shape
        mask = self.self_mask(n, queries.device)
        mask = None if mask is None else mask.expand(batch, n, n)
        for block in self.blocks:
            queries = block(queries, query_positions, [(latents, latent_positions, None)], mask)
        return queries


class AutoregressiveDecoder(_Decoder):
    """Next-token decoder over the answer prefix, cross-attending to the latents."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.significance = config.positional == "significance"
        self.window = config.decoder_window

    @staticmethod
    def query_ids(target_ids: Int[Tensor, "batch answer"]) -> Int[Tensor, "batch answer"]:
        """Teacher-forcing inputs: `start_decode` then the answer shifted right by one."""
        start = torch.full_like(target_ids[:, :1], START_DECODE)
        return torch.cat((start, target_ids[:, :-1]), dim=1)

    def query_positions(self, query_ids: Int[Tensor, "batch queries"]) -> Int[Tensor, "batch q"]:
        if self.significance:
            return next_digit_significance(query_ids)
        return torch.arange(query_ids.shape[1], device=query_ids.device).expand_as(query_ids)

    def self_mask(self, n: int, device: torch.device) -> Bool[Tensor, "n n"]:
        """Causal; with a window, only the last `window` tokens (itself included)."""
        causal = torch.ones(n, n, dtype=torch.bool, device=device).tril()
        return causal.triu(-(self.window - 1)) if self.window else causal


class ParallelSlotsDecoder(_Decoder):
    """All answer tokens at once from `answer_slots` probe queries."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.slots = config.answer_slots

    def query_ids(self, target_ids: Int[Tensor, "batch answer"]) -> Int[Tensor, "batch slots"]:
        return torch.full(
            (target_ids.shape[0], self.slots), PROBE, dtype=torch.long, device=target_ids.device
        )

    def query_positions(self, query_ids: Int[Tensor, "batch queries"]) -> Int[Tensor, "batch q"]:
        return torch.arange(query_ids.shape[1], device=query_ids.device).expand_as(query_ids)


DECODERS = {"autoregressive": AutoregressiveDecoder, "parallel": ParallelSlotsDecoder}
