"""The Th1nker: read the problem into latents, think in steps with a memory of earlier latents,
write the answer.

One thinking step (weights shared by every step):

    latents, memory = read_input(latents, inputs, memory)   # latents <- cross-attn(input tokens)
                                                            # memory  <- memory + latents (FIFO)
    latents = process(latents, memory)                      # n_layers x [self-attn,
                                                            #   memory_lookup (cross-attn), MLP]
    logits  = write_out(latents, queries)                   # answer queries cross-attend latents

`forward` runs the loop with teacher forcing and returns the logits of *every* step (deep
supervision); `generate` decodes greedily, optionally after every step (`trace`). Each problem
gets its own number of steps (`ModelConfig.steps_for`): the batch runs the longest and each row's
answer is taken at its own last step. Shapes are batch-first; see docs/model.md.
"""

from __future__ import annotations

import dataclasses
from typing import TypedDict

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from th1nker.memory.latent import LatentMemory, MemoryState
from th1nker.memory.stepped import thinking_memory
from th1nker.models.attention import Block, KeyValues
from th1nker.models.config import ModelConfig
from th1nker.models.decoders import DECODERS
from th1nker.models.family import Batch, Carry, Family, LossStats, register_family
from th1nker.models.generation import Generated, Stopping, pad_after_eos, row_exact_match
from th1nker.models.positions import number_digits, ordinal, significance
from th1nker.models.supervision import StepTargets, step_targets
from th1nker.tasks.vocab import EOS, PAD, START_DECODE


class InputCache(TypedDict):
    """The embedded problem, computed once and read at every step: its token vectors, their
    positions, and the reader's keys and values of them.

    `offset` is the row's random shift of all significance positions (0 at inference).
    """

    values: Float[Tensor, "batch seq dim"]
    positions: Int[Tensor, "batch seq"]
    mask: Bool[Tensor, "batch 1 seq"]
    offset: Int[Tensor, " batch"]
    keys: KeyValues


def input_rows(inputs: InputCache, rows: Tensor | slice) -> InputCache:
    """The embedded problems of `rows` (an index tensor or a slice of the batch)."""
    return InputCache(
        values=inputs["values"][rows],
        positions=inputs["positions"][rows],
        mask=inputs["mask"][rows],
        offset=inputs["offset"][rows],
        keys=inputs["keys"].rows(rows),
    )


@dataclasses.dataclass
class ThinkOutput:
    """logits [steps, batch, answer, vocab] of every step; active[s, b]: step s counts for row b;
    halt [steps, batch]: the halting head's logits (None without `halting`)."""

    logits: Float[Tensor, "steps batch answer vocab"]
    active: Bool[Tensor, "steps batch"]
    halt: Float[Tensor, "steps batch"] | None = None


@register_family
class Th1nker(Family):
    config_class = ModelConfig

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = config
        block = lambda self_attention: Block(  # noqa: E731
            c.dim, c.n_heads, c.rotary_fraction, c.dropout, self_attention, 1, c.mlp_ratio
        )
        self.embed = nn.Embedding(c.vocab, c.dim)
        self.ordinal_embed = nn.Embedding(c.max_numbers + 1, c.dim)
        self.latent_init = nn.Parameter(torch.randn(c.dim) * 0.02)
        self.reader = block(False)
        self.thinker = nn.ModuleList(block(True) for _ in range(c.n_layers))
        self.decoder = DECODERS[c.decoder](c)
        self.out_norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.vocab, bias=False)
        self.head.weight = self.embed.weight  # tied input and output embeddings
        self.memory = thinking_memory(c.memory, c.dim, c.mem_cache_size)
        if c.halting:
            self.halt_head = nn.Linear(c.dim, 1)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.ordinal_embed.weight, std=0.02)

    # --- the family contract (models/family.py) ---------------------------------------------

    def steps_for(self, batch: Batch) -> Int[Tensor, " batch"]:
        """`ModelConfig.steps_for` of each problem's digits, or (`steps_from: trace`) its trace
        length + `spare_steps`; at most `max_thinking_steps`."""
        c = self.config
        if c.steps_from == "digits":
            return c.steps_for(batch["digits"])
        return (batch["trace_len"] + c.spare_steps).clamp(max=c.max_thinking_steps)

    @property
    def needs_trace(self) -> bool:
        return self.config.steps_from == "trace"

    def loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, LossStats, Carry]:
        """Deep supervision (every step's answer), plus the halting loss with `halting`; the
        accuracy counts each row at its own last step. No carry between batches."""
        steps = self.steps_for(batch)
        targets = step_targets(batch, steps)
        output = self(batch["input_ids"], batch["input_mask"], targets.ids, steps)
        loss, per_step = deep_supervision_loss(output, targets.ids, targets.mask)
        if self.config.halting:
            loss = loss + self.config.halt_weight * halting_loss(output, targets)
        correct = exact_match(output, *targets.last(steps), steps)
        mask = batch["target_mask"]
        stats = LossStats(
            per_step=per_step.tolist(),
            correct=int(correct.sum()),
            rows=len(steps),
            tokens=int(mask.sum()),
            thinking_steps=int(steps.sum()),
        )
        return loss, stats, None

    # --- the pieces of one thinking step -------------------------------------------------------

    def encode_input(
        self, input_ids: Int[Tensor, "batch seq"], input_mask: Bool[Tensor, "batch seq"]
    ) -> InputCache:
        """Embed tokens (+ ordinal of their number) once; positions by the positional scheme."""
        if input_ids.shape[1] > self.config.input_cache_size:
            raise ValueError(
                f"input of {input_ids.shape[1]} tokens exceeds input_cache_size "
                f"{self.config.input_cache_size}; raise model.input_cache_size"
            )
        if int(input_ids.max()) >= self.config.vocab or int(input_ids.min()) < 0:
            raise ValueError(f"input token ids must be in 0..{self.config.vocab - 1}")
        ordinals = ordinal(input_ids).clamp(max=self.config.max_numbers)
        values = self.embed(input_ids) + self.ordinal_embed(ordinals)
        offset = torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
        if self.config.positional == "significance":
            if self.training and self.config.position_offset:
                offset = torch.randint_like(offset, 0, self.config.position_offset + 1)
            positions = torch.where(
                number_digits(input_ids), significance(input_ids) + offset[:, None], 0
            )
        else:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            positions = positions.expand_as(input_ids)
        return InputCache(
            values=values,
            positions=positions,
            mask=input_mask[:, None, :],
            offset=offset,
            keys=self.reader.context_keys(0, values, positions),
        )

    def latent_positions(self, batch: int, device: torch.device) -> Int[Tensor, "batch latents"]:
        """Latent j sits at position j (digits and answer queries carry the random offset)."""
        return torch.arange(self.config.latent, device=device).expand(batch, -1)

    def init_latent(self, batch: int) -> Float[Tensor, "batch latents dim"]:
        """The starting latents: one learned vector at every position (positions do the rest)."""
        return self.latent_init.expand(batch, self.config.latent, -1)

    def init_kv_cache(self, latents: Float[Tensor, "batch latents dim"]) -> MemoryState:
        """An empty memory."""
        return self.memory.init_state(latents)

    def read_input(
        self,
        latents: Float[Tensor, "batch latents dim"],
        inputs: InputCache,
        memory: MemoryState,
        latent_to_memory: bool = True,
    ) -> tuple[Float[Tensor, "batch latents dim"], MemoryState]:
        """Latents cross-attend to the input tokens; then (optionally) join the memory."""
        positions = self.latent_positions(latents.shape[0], latents.device)
        latents = self.reader(latents, positions, [(inputs["keys"], None, inputs["mask"])])
        if latent_to_memory:
            memory = self.memory.append(memory, latents, positions)
        return latents, memory

    def memory_lookup(self, memory: MemoryState) -> tuple[Tensor, Tensor, None]:
        """The memory as an attention context (values, positions, no mask)."""
        return memory["values"], memory["positions"], None

    def memory_keys(
        self,
        memory: MemoryState,
        earlier: list[KeyValues] | None = None,
        appended: Float[Tensor, "batch latents dim"] | None = None,
    ) -> list[KeyValues]:
        """The keys and values each thinker block reads from the memory. The latent FIFO only
        appends and evicts, and a vector's keys depend on it alone, so given the `earlier`
        ones and the latents just `appended`, only those are projected; any other memory (or
        none earlier) is projected whole."""
        if earlier is None or appended is None or not isinstance(self.memory, LatentMemory):
            values, positions, _ = self.memory_lookup(memory)
            return [block.context_keys(0, values, positions) for block in self.thinker]
        positions = self.latent_positions(appended.shape[0], appended.device)
        held = memory["values"].shape[1]
        return [
            kv.joined(block.context_keys(0, appended, positions)).newest(held)
            for kv, block in zip(earlier, self.thinker, strict=True)
        ]

    def process(
        self,
        latents: Float[Tensor, "batch latents dim"],
        memory: MemoryState,
        memory_keys: list[KeyValues] | None = None,
    ) -> Float[Tensor, "batch latents dim"]:
        """n_layers blocks of latent self-attention, memory lookup and MLP (`memory_keys`: the
        memory already projected for every block, else projected here)."""
        positions = self.latent_positions(latents.shape[0], latents.device)
        memory_keys = self.memory_keys(memory) if memory_keys is None else memory_keys
        for block, keys in zip(self.thinker, memory_keys, strict=True):
            latents = block(latents, positions, [(keys, None, None)])
        return latents

    def write_out(
        self,
        latents: Float[Tensor, "batch latents dim"],
        query_ids: Int[Tensor, "batch queries"],
        offset: Int[Tensor, " batch"],
    ) -> Float[Tensor, "batch queries vocab"]:
        """Logits of the answer queries (decoder inputs, or probes) given the latents."""
        positions = self.latent_positions(latents.shape[0], latents.device)
        query_positions = self.decoder.query_positions(query_ids) + offset[:, None]
        hidden = self.decoder(self.embed(query_ids), query_positions, latents, positions)
        return self.head(self.out_norm(hidden))

    def recurse(
        self,
        latents: Float[Tensor, "batch latents dim"],
        z: Float[Tensor, "batch latents dim"],
        memory: MemoryState,
        memory_keys: list[KeyValues] | None = None,
    ) -> tuple[Float[Tensor, "batch latents dim"], Float[Tensor, "batch latents dim"]]:
        """`process` as TRM's latent recursion (`recursion: trm`): the latents are the answer
        state y (they have just read the input, so they carry x) and z a second latent set,
        kept from step to step: `latent_updates` times z <- process(z + y), then
        y <- process(y + z). The same blocks do both updates."""
        memory_keys = self.memory_keys(memory) if memory_keys is None else memory_keys
        for _ in range(self.config.latent_updates):
            z = self.process(z + latents, memory, memory_keys)
        return self.process(latents + z, memory, memory_keys), z

    # --- the thinking loop ---------------------------------------------------------------------

    def think(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        steps: Int[Tensor, " batch"],
        past_budget: bool = False,
    ):
        """Yield (latents, position offset) after every step, up to the largest of `steps`.

        A row whose budget of `steps` is spent stops being computed: its latents stay those of
        its last step (rows are thought in order of budget, so the rows still thinking are a
        prefix). With `past_budget`, every row thinks up to the largest budget instead; so do
        all rows with a library memory (its state is not cut by rows)."""
        rows = len(steps)
        shrink = not past_budget and isinstance(self.memory, LatentMemory)
        shrink = shrink and bool(steps.min() < steps.max())
        inputs = self.encode_input(input_ids, input_mask)  # random offsets drawn in row order
        order = steps.argsort(descending=True, stable=True) if shrink else None
        if order is not None:
            inputs, steps = input_rows(inputs, order), steps[order]
        latents = self.init_latent(rows)
        memory = self.init_kv_cache(latents)
        z = torch.zeros_like(latents) if self.config.recursion == "trm" else None
        inverse = None if order is None else order.argsort()
        offset = inputs["offset"] if inverse is None else inputs["offset"][inverse]
        keys, finished = None, None
        for step in range(int(steps.max())):
            thinking = int((steps > step).sum()) if shrink else rows
            if thinking < len(latents):  # the rows from `thinking` on are done
                done = latents[thinking:]
                finished = done if finished is None else torch.cat((done, finished))
                latents, z = latents[:thinking], None if z is None else z[:thinking]
                inputs = input_rows(inputs, slice(thinking))
                memory = LatentMemory.rows(memory, slice(thinking))
                keys = [kv.rows(slice(thinking)) for kv in keys]
            latents, memory = self.read_input(latents, inputs, memory)
            keys = self.memory_keys(memory, keys, latents)
            if z is None:
                latents = self.process(latents, memory, keys)
            else:
                latents, z = self.recurse(latents, z, memory, keys)
            every = latents if finished is None else torch.cat((latents, finished))
            yield (every if inverse is None else every[inverse]), offset
            if self.config.truncate_gradients:
                latents, memory = latents.detach(), self.memory.detach_state(memory)
                z = None if z is None else z.detach()
                keys = [kv.detach() for kv in keys]
                finished = None if finished is None else finished.detach()

    def forward(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        target_ids: Int[Tensor, "*steps batch answer"],
        steps: Int[Tensor, " batch"],
    ) -> ThinkOutput:
        """Teacher-forced logits after every thinking step (deep supervision). `target_ids`:
        the answer of every step [batch, answer], or each step's own [steps, batch, answer]
        (trace supervision, `models/supervision.py`)."""
        slots, width = self.config.answer_slots, target_ids.shape[-1]
        if self.config.decoder == "parallel" and width > slots:
            raise ValueError(f"answers of {width} tokens do not fit model.answer_slots {slots}")
        per_step = target_ids.dim() == 3
        query_ids = None if per_step else self.decoder.query_ids(target_ids)
        logits, halts = [], []
        for k, (latents, offset) in enumerate(self.think(input_ids, input_mask, steps)):
            queries = self.decoder.query_ids(target_ids[k]) if per_step else query_ids
            logits.append(self.write_out(latents, queries, offset))
            if self.config.halting:
                halts.append(self.halt_logit(latents))
        stacked = torch.stack(logits)[:, :, :width]
        active = torch.arange(len(logits), device=steps.device)[:, None] < steps[None, :]
        return ThinkOutput(stacked, active, torch.stack(halts) if halts else None)

    def halt_logit(self, latents: Float[Tensor, "batch latents dim"]) -> Float[Tensor, " batch"]:
        """The halting head's logit ("the answer is right now") from the mean latent."""
        return self.halt_head(latents.mean(dim=1))[:, 0]

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
        """Greedy answers (pad after eos) at each row's last step: its `steps`, or, with
        `halting` (and `use_halting`), the first step whose halting probability reaches the
        threshold. With `trace`, the answer after every step (all rows run the longest budget)."""
        halting = self.config.halting
        stopping = Stopping(steps, self.config.halt_threshold if use_halting else None)
        answers, final = [], None
        thoughts = self.think(input_ids, input_mask, steps, past_budget=trace)
        for step, (latents, offset) in enumerate(thoughts):
            if trace:
                answers.append(self.decode(latents, offset, max_answer))
            stop = stopping.step(step, self.halt_logit(latents) if halting else None)
            final = latents if final is None else torch.where(stop[:, None, None], latents, final)
            if not (stopping.running.any() or trace):
                break
        out = torch.stack(answers) if trace else self.decode(final, offset, max_answer)[None]
        return stopping.result(out)

    def decode(
        self,
        latents: Float[Tensor, "batch latents dim"],
        offset: Int[Tensor, " batch"],
        max_answer: int,
    ) -> Int[Tensor, "batch answer"]:
        """The greedy answer of the latents, `max_answer` tokens (pad after the first eos)."""
        batch = latents.shape[0]
        if self.config.decoder == "parallel":
            probes = self.decoder.query_ids(latents.new_zeros(batch, 1, dtype=torch.long))
            tokens = self.write_out(latents, probes, offset).argmax(-1)[:, :max_answer]
        else:
            tokens = torch.full((batch, 1), START_DECODE, dtype=torch.long, device=latents.device)
            for _ in range(max_answer):
                next_token = self.write_out(latents, tokens, offset)[:, -1].argmax(-1)
                tokens = torch.cat((tokens, next_token[:, None]), dim=1)
                if bool((tokens == EOS).any(dim=1).all()):
                    break
            tokens = tokens[:, 1:]
        tokens = nn.functional.pad(tokens, (0, max_answer - tokens.shape[1]), value=PAD)
        return pad_after_eos(tokens)


def deep_supervision_loss(
    output: ThinkOutput,
    target_ids: Int[Tensor, "*steps batch answer"],
    target_mask: Bool[Tensor, "*steps batch answer"],
) -> tuple[Float[Tensor, ""], Float[Tensor, " steps"]]:
    """Mean token cross-entropy of every step over its active rows; the loss is their mean.
    The targets are every step's answer [batch, answer] or each step's own [steps, ...].

    Returns (loss, per-step losses). Steps beyond a row's own step count do not count for it.
    """
    logits = output.logits.float()
    steps = logits.shape[0]
    target_ids = target_ids.expand(steps, *target_ids.shape[-2:])
    target_mask = target_mask.expand(steps, *target_mask.shape[-2:])
    token_loss = nn.functional.cross_entropy(
        logits.flatten(0, 2), target_ids.flatten(), reduction="none"
    ).view(target_ids.shape)
    weight = (target_mask & output.active[:, :, None]).float()
    per_step = (token_loss * weight).sum(dim=(1, 2)) / weight.sum(dim=(1, 2)).clamp(min=1)
    used = output.active.any(dim=1)
    return per_step[used].mean(), per_step


def halting_loss(output: ThinkOutput, targets: StepTargets) -> Float[Tensor, ""]:
    """Binary cross-entropy of the halting logits against whether each step's (teacher-forced)
    output is the answer, entirely right, over the active steps: the label is the real
    correctness (and, under trace supervision, that the state is the algorithm's last)."""
    right = row_exact_match(output.logits, targets.ids, targets.mask) & targets.final
    bce = nn.functional.binary_cross_entropy_with_logits(
        output.halt.float(), right.float(), reduction="none"
    )
    return (bce * output.active).sum() / output.active.sum()


def exact_match(
    output: ThinkOutput,
    target_ids: Int[Tensor, "batch answer"],
    target_mask: Bool[Tensor, "batch answer"],
    steps: Int[Tensor, " batch"],
) -> Bool[Tensor, " batch"]:
    """Whether each row's teacher-forced prediction at its own last step is entirely right.

    With every token right under teacher forcing, greedy decoding writes the same answer, so this
    is the exact-match accuracy of `generate` without its token-by-token loop.
    """
    last = output.logits[steps - 1, torch.arange(len(steps), device=steps.device)]
    return row_exact_match(last, target_ids, target_mask)
