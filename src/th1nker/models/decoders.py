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
from jaxtyping import Float, Int
from torch import Tensor, nn

from th1nker.models.attention import Block
from th1nker.models.config import ModelConfig
from th1nker.models.positions import next_digit_significance
from th1nker.tasks.vocab import PROBE, START_DECODE


def _blocks(config: ModelConfig) -> nn.ModuleList:
    return nn.ModuleList(
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


class AutoregressiveDecoder(nn.Module):
    """Next-token decoder over the answer prefix, cross-attending to the latents."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.significance = config.positional == "significance"
        self.window = config.decoder_window
        self.blocks = _blocks(config)

    @staticmethod
    def query_ids(target_ids: Int[Tensor, "batch answer"]) -> Int[Tensor, "batch answer"]:
        """Teacher-forcing inputs: `start_decode` then the answer shifted right by one."""
        start = torch.full_like(target_ids[:, :1], START_DECODE)
        return torch.cat((start, target_ids[:, :-1]), dim=1)

    def query_positions(self, query_ids: Int[Tensor, "batch queries"]) -> Int[Tensor, "batch q"]:
        if self.significance:
            return next_digit_significance(query_ids)
        return torch.arange(query_ids.shape[1], device=query_ids.device).expand_as(query_ids)

    def forward(
        self,
        queries: Float[Tensor, "batch queries dim"],
        query_positions: Int[Tensor, "batch queries"],
        latents: Float[Tensor, "batch latents dim"],
        latent_positions: Int[Tensor, "batch latents"],
    ) -> Float[Tensor, "batch queries dim"]:
        n = queries.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=queries.device).tril()
        if self.window:
            causal = causal.triu(-(self.window - 1))  # the last `window` tokens, itself included
        causal = causal.expand(queries.shape[0], n, n)
        for block in self.blocks:
            queries = block(queries, query_positions, [(latents, latent_positions, None)], causal)
        return queries


class ParallelSlotsDecoder(nn.Module):
    """All answer tokens at once from `answer_slots` probe queries."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.slots = config.answer_slots
        self.blocks = _blocks(config)

    def query_ids(self, target_ids: Int[Tensor, "batch answer"]) -> Int[Tensor, "batch slots"]:
        return torch.full(
            (target_ids.shape[0], self.slots), PROBE, dtype=torch.long, device=target_ids.device
        )

    def query_positions(self, query_ids: Int[Tensor, "batch queries"]) -> Int[Tensor, "batch q"]:
        return torch.arange(query_ids.shape[1], device=query_ids.device).expand_as(query_ids)

    def forward(
        self,
        queries: Float[Tensor, "batch queries dim"],
        query_positions: Int[Tensor, "batch queries"],
        latents: Float[Tensor, "batch latents dim"],
        latent_positions: Int[Tensor, "batch latents"],
    ) -> Float[Tensor, "batch queries dim"]:
        for block in self.blocks:
            queries = block(queries, query_positions, [(latents, latent_positions, None)])
        return queries


DECODERS = {"autoregressive": AutoregressiveDecoder, "parallel": ParallelSlotsDecoder}
