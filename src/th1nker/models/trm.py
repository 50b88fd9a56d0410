"""The Tiny Recursive Model (TRM, Jolicoeur-Martineau 2025) on the task language.

The problem and `answer_slots` blank slots form one sequence; its embedding `x` is fixed for the
whole recursion. Two states of the same shape are refined: the answer `y` (starts as `x`) and the
latent `z` (starts at zeros). One tiny network does both updates:

    latent_recursion:  n times  z <- net(W_xyz [x, y, z]);   then  y <- net(W_yz [y, z])
    deep_recursion:    T latent recursions, the first T-1 without gradient, the last with it
    supervision step:  deep_recursion, then logits = head(y[answer slots]) and the halting logit
                       q = w . mean(y[answer slots]) ("is the answer right?")

A supervision step returns the states detached, so steps share no graph: training takes one
optimiser step per supervision step (`train/act.py`), and inference runs steps until the halting
probability reaches `halt_threshold` or `supervision_steps` are used. All answer slots are refined
in parallel; `sample` writes a sequence token by token instead, continuing the recursion from the
current states after each token rather than starting again. docs/recursion.md has the details.
"""

from __future__ import annotations

from typing import TypedDict

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from th1nker.models.act import act_step
from th1nker.models.attention import Block, FeedForward
from th1nker.models.config import TRMConfig
from th1nker.models.family import Batch, Family, LossStats, register_family
from th1nker.models.generation import (
    Generated,
    Stopping,
    pad_after_eos,
    sample_logits,
    says_done,
)
from th1nker.models.positions import ordinal, significance
from th1nker.tasks.vocab import BLANK, EOS, PAD


class Carry(TypedDict):
    """Everything a supervision step needs and changes, batch-first (rows may be at different
    steps: a row is replaced by a new problem with `torch.where`)."""

    tokens: Int[Tensor, "batch seq"]
    mask: Bool[Tensor, "batch seq"]
    y: Float[Tensor, "batch seq dim"]
    z: Float[Tensor, "batch seq dim"]
    steps: Int[Tensor, " batch"]


class MixerBlock(nn.Module):
    """MLP-mixer block: an MLP across the (fixed number of) positions, then one across features."""

    def __init__(self, length: int, dim: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.token_norm = nn.LayerNorm(dim)
        self.token_mlp = FeedForward(length, mlp_ratio, dropout)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio, dropout)

    def forward(self, x: Float[Tensor, "batch seq dim"]) -> Float[Tensor, "batch seq dim"]:
        x = x + self.token_mlp(self.token_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.mlp(self.mlp_norm(x))


class TinyNet(nn.Module):
    """The one network of the recursion: a projection of the concatenated states, blocks, and a
    final norm, so that y and z keep their scale however many times they are updated (TRM uses
    post-norm for the same reason; unnormalized states grow with every round and training
    stalls)."""

    def __init__(self, c: TRMConfig):
        super().__init__()
        self.from_xyz = nn.Linear(3 * c.dim, c.dim)
        self.from_yz = nn.Linear(2 * c.dim, c.dim)
        length = c.input_cache_size + c.answer_slots
        self.attention = c.mixer == "attention"
        self.blocks = nn.ModuleList(
            Block(c.dim, c.n_heads, c.rotary_fraction, c.dropout, True, 0, c.mlp_ratio)
            if self.attention
            else MixerBlock(length, c.dim, c.mlp_ratio, c.dropout)
            for _ in range(c.n_layers)
        )
        self.norm = nn.LayerNorm(c.dim)

    def forward(
        self,
        h: Float[Tensor, "batch seq dim"],
        positions: Int[Tensor, "batch seq"],
        mask: Bool[Tensor, "batch seq seq"],
    ) -> Float[Tensor, "batch seq dim"]:
        for block in self.blocks:
            h = block(h, positions, [], mask) if self.attention else block(h)
        return self.norm(h)


@register_family
class TRM(Family):
    config_class = TRMConfig

    def __init__(self, config: TRMConfig):
        super().__init__(config)
        c = config
        self.embed = nn.Embedding(c.vocab, c.dim)
        self.ordinal_embed = nn.Embedding(c.max_numbers + 1, c.dim)
        self.in_norm = nn.LayerNorm(c.dim)
        self.net = TinyNet(c)
        self.out_norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.vocab, bias=False)
        self.head.weight = self.embed.weight  # tied input and output embeddings
        self.q_head = nn.Linear(c.dim, 1)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.ordinal_embed.weight, std=0.02)
        nn.init.zeros_(self.q_head.weight)
        nn.init.constant_(self.q_head.bias, -3.0)  # p(done) = 0.05: start by thinking on

    # --- the family contract (models/family.py) ---------------------------------------------

    def steps_for(self, batch: Batch) -> Int[Tensor, " batch"]:
        """N_sup for every problem (halting decides how many are used)."""
        return self.config.steps_for(batch["digits"])

    def loss(
        self, batch: Batch, carry: dict[str, Tensor] | None
    ) -> tuple[Tensor, LossStats, dict[str, Tensor]]:
        """One ACT supervision step on the carry of problems in flight (`models/act.py`); the
        accuracy counts the rows that halted at this step."""
        carry, loss, stats = act_step(self, carry, batch)
        counted = LossStats(
            per_step=[loss.item()],
            correct=stats["correct"],
            rows=stats["halted"],
            tokens=stats["tokens"],
            thinking_steps=stats["halted_steps"],
        )
        return loss, counted, carry

    # --- the sequence: problem, then answer slots ----------------------------------------------

    def start(
        self, input_ids: Int[Tensor, "batch seq"], input_mask: Bool[Tensor, "batch seq"]
    ) -> Carry:
        """The problem padded to `input_cache_size`, blank answer slots, y = x, z = 0."""
        c = self.config
        batch, width = input_ids.shape
        if width > c.input_cache_size:
            raise ValueError(
                f"input of {width} tokens exceeds input_cache_size {c.input_cache_size}; "
                "raise model.input_cache_size"
            )
        if int(input_ids.max()) >= c.vocab or int(input_ids.min()) < 0:
            raise ValueError(f"input token ids must be in 0..{c.vocab - 1}")
        pad = c.input_cache_size - width
        tokens = torch.cat(
            (
                nn.functional.pad(input_ids.masked_fill(~input_mask, PAD), (0, pad), value=PAD),
                input_ids.new_full((batch, c.answer_slots), BLANK),
            ),
            dim=1,
        )
        mask = torch.cat(
            (
                nn.functional.pad(input_mask, (0, pad), value=False),
                input_mask.new_ones(batch, c.answer_slots),
            ),
            dim=1,
        )
        x = self.embed_sequence(tokens, mask)[0].detach()  # the carry holds no graph
        steps = torch.zeros(batch, dtype=torch.long, device=input_ids.device)
        return Carry(tokens=tokens, mask=mask, y=x, z=torch.zeros_like(x), steps=steps)

    def embed_sequence(
        self, tokens: Int[Tensor, "batch seq"], mask: Bool[Tensor, "batch seq"]
    ) -> tuple[Float[Tensor, "batch seq dim"], Int[Tensor, "batch seq"]]:
        """x (normalized: the same scale as y and z, which leave the net normalized) and the
        rotary positions: digits at their significance, answer slot j at j (answers
        are written least significant digit first, so slot j meets the digits of weight b^j)."""
        n = self.config.input_cache_size
        problem = tokens[:, :n]
        ordinals = ordinal(problem).clamp(max=self.config.max_numbers)
        slots = torch.arange(self.config.answer_slots, device=tokens.device)
        positions = torch.cat((significance(problem), slots.expand(len(tokens), -1)), dim=1)
        x = self.embed(tokens)
        x = torch.cat((x[:, :n] + self.ordinal_embed(ordinals), x[:, n:]), dim=1)
        return self.in_norm(x) * mask[..., None], positions

    # --- the recursion -------------------------------------------------------------------------

    def latent_recursion(
        self,
        x: Float[Tensor, "batch seq dim"],
        y: Float[Tensor, "batch seq dim"],
        z: Float[Tensor, "batch seq dim"],
        positions: Int[Tensor, "batch seq"],
        mask: Bool[Tensor, "batch seq seq"],
    ) -> tuple[Float[Tensor, "batch seq dim"], Float[Tensor, "batch seq dim"]]:
        """n updates of z from (x, y, z), then one update of y from (y, z)."""
        for _ in range(self.config.latent_updates):
            z = self.net(self.net.from_xyz(torch.cat((x, y, z), -1)), positions, mask)
        y = self.net(self.net.from_yz(torch.cat((y, z), -1)), positions, mask)
        return y, z

    def deep_recursion(
        self,
        x: Float[Tensor, "batch seq dim"],
        y: Float[Tensor, "batch seq dim"],
        z: Float[Tensor, "batch seq dim"],
        positions: Int[Tensor, "batch seq"],
        mask: Bool[Tensor, "batch seq seq"],
    ) -> tuple[Float[Tensor, "batch seq dim"], Float[Tensor, "batch seq dim"]]:
        """T latent recursions: T-1 without gradient, the last with it. Returns the tracked
        (y, z); the next supervision step takes them detached."""
        if self.config.recursions > 1:
            with torch.no_grad():
                for _ in range(self.config.recursions - 1):
                    y, z = self.latent_recursion(x, y, z, positions, mask)
            assert not (y.requires_grad or z.requires_grad), "the no-grad rounds built a graph"
        return self.latent_recursion(x, y, z, positions, mask)

    def read_out(
        self, y: Float[Tensor, "batch seq dim"]
    ) -> tuple[Float[Tensor, "batch slots vocab"], Float[Tensor, " batch"]]:
        """Logits of the answer slots and the halting logit (from their mean)."""
        answer = self.out_norm(y[:, self.config.input_cache_size :])
        return self.head(answer), self.q_head(answer.mean(dim=1))[:, 0]

    def supervision_step(
        self, carry: Carry
    ) -> tuple[Carry, Float[Tensor, "batch slots vocab"], Float[Tensor, " batch"]]:
        """One deep recursion from the carried states: (next carry with detached states, logits,
        halting logit); logits and halting logit carry the graph of the last round."""
        x, positions = self.embed_sequence(carry["tokens"], carry["mask"])
        mask = carry["mask"][:, None, :].expand(-1, x.shape[1], -1)
        y, z = self.deep_recursion(x, carry["y"], carry["z"], positions, mask)
        logits, halt_logit = self.read_out(y)
        following = Carry(
            tokens=carry["tokens"],
            mask=carry["mask"],
            y=y.detach(),
            z=z.detach(),
            steps=carry["steps"] + 1,
        )
        return following, logits, halt_logit

    def wants_to_halt(self, halt_logit: Float[Tensor, " batch"]) -> Bool[Tensor, " batch"]:
        """Whether the halting head says done (never without `halting`)."""
        if not self.config.halting:
            return torch.zeros_like(halt_logit, dtype=torch.bool)
        return says_done(halt_logit, self.config.halt_threshold)

    # --- inference -----------------------------------------------------------------------------

    def decode_steps(
        self,
        carry: Carry,
        steps: Int[Tensor, " batch"],
        max_answer: int,
        run_all: bool = False,
        use_halting: bool = True,
    ) -> tuple[Carry, Float[Tensor, "batch slots vocab"], Generated]:
        """Supervision steps until every row stopped (its halting head said done, unless not
        `use_halting`, or it used its `steps`), or with `run_all` until the largest budget.
        Returns the final carry, the last logits, and Generated with every step's greedy answer
        [steps, batch, max_answer], the steps each row used, and the halting probabilities."""
        halting = self.config.halting
        stopping = Stopping(steps, self.config.halt_threshold if use_halting else None)
        answers = []
        for step in range(int(steps.max())):
            carry, logits, halt_logit = self.supervision_step(carry)
            answer = pad_after_eos(logits.argmax(-1))[:, :max_answer]
            answers.append(nn.functional.pad(answer, (0, max_answer - answer.shape[1]), value=PAD))
            stopping.step(step, halt_logit if halting else None)
            if not (stopping.running.any() or run_all):
                break
        return carry, logits, stopping.result(torch.stack(answers))

    @torch.no_grad()
    def generate(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        steps: Int[Tensor, " batch"],
        max_answer: int,
        trace: bool = False,
        use_halting: bool = True,
    ) -> Generated:
        """Greedy answers, each row stopping when its halting head says done (if `use_halting`)
        or after its `steps` supervision steps; with `trace`, the answer after every step up to
        the largest budget (`steps` still tells where each row stopped)."""
        carry = self.start(input_ids, input_mask)
        _, _, out = self.decode_steps(carry, steps, max_answer, trace, use_halting)
        if trace:
            return out
        rows = torch.arange(len(steps), device=steps.device)
        return Generated(out.answers[out.steps - 1, rows][None], out.steps, out.halt)

    @torch.no_grad()
    def sample(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        steps: Int[Tensor, " batch"],
        max_answer: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        top_k: int = 0,
        top_p: float = 1.0,
        steps_per_token: int = 1,
    ) -> Int[Tensor, "batch answer"]:
        """An answer written token by token into the slots (left to right), sampled with
        temperature / top-k / top-p; pad after eos. After the first thinking (until halting or
        N_sup; `steps` is not used), each written token costs only `steps_per_token` more
        supervision steps, continuing from the current (y, z): the recursion is not restarted
        for every token."""
        c = self.config
        budget = torch.full((len(input_ids),), c.supervision_steps, device=input_ids.device)
        carry, logits, _ = self.decode_steps(self.start(input_ids, input_mask), budget, 1)
        slots = slice(c.input_cache_size, c.input_cache_size + min(max_answer, c.answer_slots))
        done = torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
        for j in range(slots.stop - slots.start):
            token = sample_logits(logits[:, j], temperature, top_k, top_p, generator)
            carry["tokens"][:, slots.start + j] = token.masked_fill(done, PAD)
            done |= token == EOS
            if bool(done.all()):
                break
            for _ in range(steps_per_token):
                carry, logits, _ = self.supervision_step(carry)
        answer = carry["tokens"][:, slots]
        return answer.masked_fill(answer == BLANK, PAD)
