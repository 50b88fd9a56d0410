"""The decoder-only transformer baseline: what a researcher would pick instead of a thinking loop.

One causal sequence per problem, the prompt left-padded so that every answer starts at the same
index:

    pad .. pad  @ 10 5 5 * 0 8 1 =   0 0 9 9 eos                    (the answer alone)
    pad .. pad  @ 10 5 5 * 0 8 1 =   0 = 0 0 4 4 = 0 0 9 9 eos      (scratchpad: the trace)

With `scratchpad`, the model first writes the states of the problem's algorithm (the same traces
the Th1nker is taught in its latents, docs/task-language.md#traces), separated by `=`; the last
state is the answer. Only the answer is checked: `generate` returns the tokens after the last `=`
before the first eos, never the scratchpad.

Positions (McLeish et al. 2024, "Abacus"): every digit adds a learned embedding of its
significance (index inside its number, units first), shifted in training by a random
0..`position_offset` per problem so that longer numbers than trained still find embeddings that
were trained; rotary angles on part of each head follow the token's index. Answers are written
least significant digit first, as everywhere in the task language. Greedy decoding keeps a
key/value cache (models/attention.py), so each new token costs one position, not the prefix.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from th1nker.models.attention import Block, KVCache
from th1nker.models.config import DecoderConfig
from th1nker.models.family import Batch, Carry, Family, LossStats, register_family
from th1nker.models.generation import Generated, pad_after_eos, row_exact_match, sample_logits
from th1nker.models.positions import number_digits, significance
from th1nker.tasks.vocab import EOS, EQUALS, PAD


def left_padded(
    ids: Int[Tensor, "batch seq"], mask: Bool[Tensor, "batch seq"]
) -> tuple[Int[Tensor, "batch seq"], Bool[Tensor, "batch seq"]]:
    """Right-padded rows moved to the right end (pad first), and their mask."""
    width = ids.shape[1]
    length = mask.sum(dim=1, keepdim=True)
    index = torch.arange(width, device=ids.device)[None, :] - (width - length)
    valid = index >= 0
    moved = ids.gather(1, index.clamp(min=0))
    return moved.masked_fill(~valid, PAD), valid


def scratchpad_of(batch: Batch) -> Int[Tensor, "batch width"]:
    """Every row's trace states written one after the other, `=` between them, the last (the
    answer) ending with eos; pad-filled to the longest row."""
    trace, trace_len = batch["trace_ids"], batch["trace_len"]
    state = torch.arange(trace.shape[1], device=trace.device)[None, :, None]
    in_trace = state < trace_len[:, None, None]
    ids = torch.where((trace == EOS) & (state < trace_len[:, None, None] - 1), EQUALS, trace)
    kept = ((trace != PAD) & in_trace).flatten(1)
    order = torch.sort((~kept).int(), dim=1, stable=True).indices  # kept tokens first, in order
    length = kept.sum(dim=1)
    ids = ids.flatten(1).gather(1, order)[:, : int(length.max())]
    return ids.masked_fill(torch.arange(ids.shape[1], device=ids.device) >= length[:, None], PAD)


def answer_after_scratchpad(
    written: Int[Tensor, "batch seq"], max_answer: int
) -> tuple[Int[Tensor, "batch answer"], Int[Tensor, " batch"]]:
    """(the tokens after the last `=` before the first eos, eos included, pad-filled to
    `max_answer`; the number of states written). A row without eos keeps no eos: it is wrong."""
    n, width = written.shape
    index = torch.arange(width, device=written.device).expand(n, -1)
    eos = torch.where(written == EOS, index, width).min(dim=1).values
    before_eos = index < eos[:, None]
    separators = (written == EQUALS) & before_eos
    start = torch.where(separators, index, -1).max(dim=1).values + 1
    take = start[:, None] + torch.arange(max_answer, device=written.device)
    answer = written.gather(1, take.clamp(max=width - 1))
    answer = answer.masked_fill((take > eos[:, None]) | (take >= width), PAD)
    return answer, separators.sum(dim=1) + 1


def scratchpad_states(
    written: Int[Tensor, "batch seq"], max_answer: int
) -> Int[Tensor, "states batch answer"]:
    """Every state a scratchpad wrote (`s1 = s2 = ... = answer eos`), each ending with eos and
    pad-filled to `max_answer`; a row with fewer states repeats its last one (its answer)."""
    rows = []
    for row in written.tolist():
        row = row[: row.index(EOS)] if EOS in row else row
        states, state = [], []
        for token in row:
            if token == EQUALS:
                states.append(state)
                state = []
            else:
                state.append(token)
        rows.append([(s + [EOS])[:max_answer] for s in [*states, state]])
    out = torch.full((max(map(len, rows)), len(rows), max_answer), PAD, dtype=torch.long)
    for i, states in enumerate(rows):
        for k in range(out.shape[0]):
            state = states[min(k, len(states) - 1)]
            out[k, i, : len(state)] = torch.tensor(state)
    return out.to(written.device)


@register_family
class DecoderOnly(Family):
    config_class = DecoderConfig

    def __init__(self, config: DecoderConfig):
        super().__init__(config)
        c = config
        self.embed = nn.Embedding(c.vocab, c.dim)
        self.abacus = nn.Embedding(2 * (c.max_significance + c.position_offset) + 2, c.dim)
        self.blocks = nn.ModuleList(
            Block(c.dim, c.n_heads, c.rotary_fraction, c.dropout, True, 0, c.mlp_ratio)
            for _ in range(c.n_layers)
        )
        self.out_norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.vocab, bias=False)
        self.head.weight = self.embed.weight  # tied input and output embeddings
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.abacus.weight, std=0.02)

    # --- the family contract (models/family.py) ---------------------------------------------

    def loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, LossStats, Carry]:
        """Cross-entropy of the written tokens (scratchpad and answer, or the answer) under
        teacher forcing; a row counts as right when all of them are the argmax."""
        if self.config.scratchpad and "trace_ids" not in batch:
            raise ValueError("model.scratchpad needs batches with traces (supervision: trace)")
        target = scratchpad_of(batch) if self.config.scratchpad else batch["target_ids"]
        prompt, prompt_valid = self.prompt(batch["input_ids"], batch["input_mask"])
        offset = self.random_offset(len(target), target.device)
        n_tokens = int((target != PAD).sum())
        loss_sum, correct = target.new_zeros((), dtype=torch.float), 0
        for rows in length_buckets(target, self.config.length_buckets):
            bucket = target[rows]
            bucket = bucket[:, : int((bucket != PAD).sum(dim=1).max())]
            logits = self.teacher_forced(prompt[rows], prompt_valid[rows], bucket, offset[rows])
            mask = bucket != PAD
            loss_sum = loss_sum + nn.functional.cross_entropy(
                logits[mask].float(), bucket[mask], reduction="sum"
            )
            correct += int(row_exact_match(logits, bucket, mask).sum())
        loss = loss_sum / n_tokens
        stats = LossStats(
            per_step=[loss.item()],
            correct=correct,
            rows=len(target),
            tokens=n_tokens,
            thinking_steps=len(target),
        )
        return loss, stats, None

    def teacher_forced(
        self,
        prompt: Int[Tensor, "batch prompt"],
        prompt_valid: Bool[Tensor, "batch prompt"],
        target: Int[Tensor, "batch answer"],
        offset: Int[Tensor, " batch"],
    ) -> Float[Tensor, "batch answer vocab"]:
        """The logits of every target token given the prompt and the target before it."""
        tokens = torch.cat((prompt, target), dim=1)[:, :-1]
        valid = torch.cat((prompt_valid, target != PAD), dim=1)[:, :-1]
        x = self.embed_tokens(tokens, offset)
        hidden = self.hidden(x, index_positions(valid), self_mask(valid))
        return self.head(self.out_norm(hidden[:, prompt.shape[1] - 1 :]))

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
        """Greedy decoding with a key/value cache until every row wrote eos (or `max_answer`
        tokens, `max_scratchpad` with a scratchpad). `steps` is ignored (one pass, no thinking
        steps); `Generated.steps` counts the states written (1 without a scratchpad), and with
        `trace` and a scratchpad `answers` holds every state written (`scratchpad_states`)."""
        out = self.decode(input_ids, input_mask, max_answer, lambda logits: logits.argmax(-1))
        answer, states = self.answer_of(out, max_answer)
        answers = scratchpad_states(out, max_answer) if trace and self.config.scratchpad else None
        answers = answer[None] if answers is None else answers
        halt = torch.full((len(answers), len(out)), float("nan"), device=out.device)
        return Generated(answers=answers, steps=states, halt=halt)

    @torch.no_grad()
    def sample(self, input_ids, input_mask, steps, max_answer, temperature=1.0, generator=None):
        """Answers decoded by sampling every token (scratchpad included) from
        softmax(logits / temperature); `steps` is ignored, as in `generate`."""

        def pick(logits):
            return sample_logits(logits, temperature, generator=generator)

        return self.answer_of(self.decode(input_ids, input_mask, max_answer, pick), max_answer)[0]

    def decode(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        max_answer: int,
        pick: Callable[[Float[Tensor, "batch vocab"]], Int[Tensor, " batch"]],
    ) -> Int[Tensor, "batch written"]:
        """The tokens written after the prompt, each chosen by `pick` from the next-token
        logits, with a key/value cache, until every row wrote eos (or `max_answer` tokens,
        `max_scratchpad` with a scratchpad)."""
        tokens, valid = self.prompt(input_ids, input_mask)
        n, zero = len(tokens), torch.zeros(len(tokens), dtype=torch.long, device=tokens.device)
        cache = KVCache()
        x, positions = self.embed_tokens(tokens, zero), index_positions(valid)
        hidden = self.hidden(x, positions, self_mask(valid), cache)
        position = positions[:, -1:]
        limit = self.config.max_scratchpad if self.config.scratchpad else max_answer
        written: list[Tensor] = []
        ended = torch.zeros(n, dtype=torch.bool, device=tokens.device)
        for _ in range(limit):
            next_token = pick(self.head(self.out_norm(hidden[:, -1])))
            written.append(next_token)
            ended |= next_token == EOS
            if bool(ended.all()) or len(written) == limit:
                break
            tokens = torch.cat((tokens, next_token[:, None]), dim=1)
            valid = torch.cat((valid, valid.new_ones(n, 1)), dim=1)
            position = position + 1
            x = self.embed_tokens(tokens, zero)[:, -1:]
            hidden = self.hidden(x, position, valid[:, None, :], cache)
        return torch.stack(written, dim=1)

    def answer_of(
        self, written: Int[Tensor, "batch written"], max_answer: int
    ) -> tuple[Int[Tensor, "batch answer"], Int[Tensor, " batch"]]:
        """(the answer in what was written, pad after eos; the number of states written)."""
        if self.config.scratchpad:
            return answer_after_scratchpad(written, max_answer)
        answer = nn.functional.pad(written, (0, max_answer - written.shape[1]), value=PAD)
        ones = torch.ones(len(written), dtype=torch.long, device=written.device)
        return pad_after_eos(answer[:, :max_answer]), ones

    # --- the sequence --------------------------------------------------------------------------

    def prompt(
        self, input_ids: Int[Tensor, "batch seq"], input_mask: Bool[Tensor, "batch seq"]
    ) -> tuple[Int[Tensor, "batch seq"], Bool[Tensor, "batch seq"]]:
        """The problems left-padded (checked against the model's limits)."""
        c = self.config
        if input_ids.shape[1] > c.input_cache_size:
            raise ValueError(
                f"input of {input_ids.shape[1]} tokens exceeds input_cache_size "
                f"{c.input_cache_size}; raise model.input_cache_size"
            )
        if int(input_ids.max()) >= c.vocab or int(input_ids.min()) < 0:
            raise ValueError(f"input token ids must be in 0..{c.vocab - 1}")
        return left_padded(input_ids, input_mask)

    def random_offset(self, n: int, device: torch.device) -> Int[Tensor, " batch"]:
        """Each row's shift of its digit significances: random in training, else 0."""
        if not (self.training and self.config.position_offset):
            return torch.zeros(n, dtype=torch.long, device=device)
        return torch.randint(0, self.config.position_offset + 1, (n,), device=device)

    def embed_tokens(
        self, tokens: Int[Tensor, "batch seq"], offset: Int[Tensor, " batch"]
    ) -> Float[Tensor, "batch seq dim"]:
        """Token embedding + the Abacus embedding of each digit's (shifted) significance."""
        limit = self.config.max_significance + self.config.position_offset
        digit_index = significance(tokens)  # fraction digits are < 0: shifted away from 0 too
        shifted = digit_index + torch.where(digit_index < 0, -offset[:, None], offset[:, None])
        index = shifted.clamp(-limit, limit) + limit + 1
        return self.embed(tokens) + self.abacus(torch.where(number_digits(tokens), index, 0))

    def hidden(
        self,
        x: Float[Tensor, "batch seq dim"],
        positions: Int[Tensor, "batch seq"],
        mask: Bool[Tensor, "batch seq keys"],
        cache: KVCache | None = None,
    ) -> Float[Tensor, "batch seq dim"]:
        """The blocks over `x` (after the tokens in `cache`, if given); `mask[b, q, k]`: query
        q may read key k (cached keys first)."""
        for block in self.blocks:
            x = block(x, positions, [], mask, cache)
        return x


def length_buckets(target: Int[Tensor, "batch answer"], buckets: int) -> list[Int[Tensor, " rows"]]:
    """The batch's rows in `buckets` groups of about equal size by target length (shortest
    first), so that each group is padded only to its own longest row; one group: all rows in
    order."""
    if buckets == 1:
        return [torch.arange(len(target), device=target.device)]
    order = (target != PAD).sum(dim=1).argsort(stable=True)
    return [rows for rows in order.tensor_split(min(buckets, len(target))) if len(rows)]


def index_positions(valid: Bool[Tensor, "batch seq"]) -> Int[Tensor, "batch seq"]:
    """Each token's index counted from its row's first real token (pads before it: 0)."""
    return (valid.long().cumsum(dim=1) - 1).clamp(min=0)


def self_mask(valid: Bool[Tensor, "batch seq"]) -> Bool[Tensor, "batch seq seq"]:
    """Causal attention to real tokens (pad keys hidden; every position sees itself, so a pad
    query has a key)."""
    n = valid.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=valid.device).tril()
    eye = torch.eye(n, dtype=torch.bool, device=valid.device)
    return (causal & valid[:, None, :]) | eye
