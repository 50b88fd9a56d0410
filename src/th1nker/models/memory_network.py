"""YAML memory networks (`memory/network.py`: controllers and memories wired in YAML) as a model
family, trained by `th1nker train` like the Th1nker.

A problem of the task language becomes a sequence of vectors, one step per token:

    input step (one per problem token):  [bits of a digit token | one-hot of another token | 0]
    pause steps (`pause`):               [0 | one-hot of `blank` (the delimiter) | 0]
    answer step j (until the answer's eos): [0 | 0 | 1]   ("answer now")

and the network's output at every answer step is `bits` logits (the symbol, as bits) and one
end logit (1 at the step of the eos: the answer is complete). Training minimises the binary
cross-entropy of the answer bits and of the end logit at every answer step; `generate` runs the
answer steps until each row's end logit is positive (or `max_answer`), so the network decides the
answer's length itself and its answers are checked like any model's. Answers can hold digit
tokens 0..2^bits - 1 and eos only (the memory tasks: copy, reverse, recall).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
from jaxtyping import Bool, Float, Int
from pydantic import BeforeValidator, Field
from torch import Tensor

from th1nker.config_files import read_yaml
from th1nker.memory.network import Network, NetworkSpec, with_extends
from th1nker.models.family import Batch, Carry, Family, FamilyConfig, LossStats, register_family
from th1nker.models.generation import Generated, pad_after_eos
from th1nker.tasks.vocab import BLANK, EOS, N_DIGITS, VOCAB_SIZE

SPECIAL = VOCAB_SIZE - N_DIGITS  # non-digit tokens, one input channel each


def _network_from_path(value: Any) -> Any:
    """A network given as a YAML path is read, its modules' `extends` resolved (relative to the
    file), so the resolved experiment holds the whole network inline."""
    if not isinstance(value, str):
        return value
    data, _ = read_yaml(value, {}, (), "network")
    base = Path(value).parent
    modules = {
        name: with_extends(f"network.modules.{name}", spec, base)
        for name, spec in data.get("modules", {}).items()
    }
    return {**data, "modules": modules}


class MemoryNetworkConfig(FamilyConfig):
    """A memory network on the task language (docs/memory.md)."""

    path_fields: ClassVar[tuple[str, ...]] = ("network",)
    kind: Literal["memory_network"] = Field("memory_network", description="which model family")
    network: Annotated[NetworkSpec, BeforeValidator(_network_from_path)] = Field(
        description="the network: a YAML path or inline (its input_size and output_size are set "
        "by this family: bits + 20 + 1 in, bits + 1 out)"
    )
    bits: int = Field(8, ge=1, le=8, description="symbol width: digit tokens 0..2^bits - 1")
    pause: int = Field(0, ge=0, description="delimiter steps between the problem and the answer")
    detach_every: int = Field(
        0, ge=0, description="truncate backpropagation every k steps (0: never)"
    )

    @property
    def input_size(self) -> int:
        return self.bits + SPECIAL + 1

    @property
    def output_size(self) -> int:
        return self.bits + 1

    def describe(self) -> str:
        modules = ", ".join(f"{name} {spec['type']}" for name, spec in self.network.modules.items())
        return f"memory network {self.network.name} ({modules}), pause {self.pause}"


@register_family
class MemoryNetwork(Family):
    config_class = MemoryNetworkConfig
    compile_refusal = (
        "the network steps through each sequence in a Python loop whose length changes from "
        "batch to batch, so it would recompile for every length"
    )

    def __init__(self, config: MemoryNetworkConfig):
        super().__init__(config)
        spec = config.network.model_copy(
            update={"input_size": config.input_size, "output_size": config.output_size}
        )
        self.network = Network(spec)
        self.register_buffer("bit_values", 2 ** torch.arange(config.bits), persistent=False)

    def encode(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        answer_steps: Int[Tensor, " batch"],
    ) -> Float[Tensor, "batch time input"]:
        """The input vectors: the problem, `pause` delimiter steps, `answer_steps` answer steps
        per row (rows end at different steps; the rest is zeros)."""
        c = self.config
        n, device = len(input_ids), input_ids.device
        in_len = input_mask.sum(1)
        start = in_len + c.pause
        inputs = torch.zeros(n, int((start + answer_steps).max()), c.input_size, device=device)
        digit = input_mask & (input_ids < N_DIGITS)
        inputs[:, : input_ids.shape[1], : c.bits] = torch.where(
            digit[..., None], (input_ids[..., None] & self.bit_values) > 0, False
        ).float()
        special = input_mask & ~digit
        channel = (input_ids - N_DIGITS).clamp(min=0) + c.bits
        rows, cols = torch.nonzero(special, as_tuple=True)
        inputs[rows, cols, channel[rows, cols]] = 1
        time = torch.arange(inputs.shape[1], device=device)
        pause = (time >= in_len[:, None]) & (time < start[:, None])
        inputs[..., c.bits + BLANK - N_DIGITS] += pause.float()
        answer = (time >= start[:, None]) & (time < (start + answer_steps)[:, None])
        inputs[..., -1] = answer.float()
        return inputs

    def answer_outputs(
        self,
        input_ids: Int[Tensor, "batch seq"],
        input_mask: Bool[Tensor, "batch seq"],
        answer_steps: Int[Tensor, " batch"],
        width: int,
    ) -> Float[Tensor, "batch width output"]:
        """The network run over the encoded problems (`answer_steps` answer steps each): its
        outputs at each row's first `width` answer steps (past a row's end: its last step)."""
        inputs = self.encode(input_ids, input_mask, answer_steps)
        outputs, _ = self.network.run(inputs, detach_every=self.config.detach_every)
        start = input_mask.sum(1) + self.config.pause
        index = start[:, None] + torch.arange(width, device=inputs.device)
        index = index.clamp(max=outputs.shape[1] - 1)
        return outputs.gather(1, index[..., None].expand(-1, -1, outputs.shape[-1]))

    def loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, LossStats, Carry]:
        """BCE of the answer bits (symbol steps) and of the end logit (every answer step)."""
        c = self.config
        targets, mask = batch["target_ids"], batch["target_mask"]
        symbols = mask & (targets != EOS)
        unwritable = symbols & (targets >= 2**c.bits)
        if bool(unwritable.any()):
            bad = int(targets[unwritable][0])
            raise ValueError(
                f"memory_network: answer token {bad} cannot be written: the network writes "
                f"symbols 0..{2**c.bits - 1} (model.bits {c.bits}) and eos"
            )
        at_answer = self.answer_outputs(
            batch["input_ids"], batch["input_mask"], mask.sum(1), targets.shape[1]
        )  # every answer step: its symbols and the eos
        bit_logits, end_logits = at_answer[..., : c.bits], at_answer[..., c.bits]
        bit_targets = torch.where(
            symbols[..., None], (targets[..., None] & self.bit_values) > 0, False
        )
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        bit_loss = bce(bit_logits, bit_targets.float(), reduction="none")[symbols]
        end_loss = bce(end_logits, (targets == EOS).float(), reduction="none")[mask]
        loss = torch.cat((bit_loss.flatten(), end_loss)).mean()
        right_bits = ((bit_logits > 0) == bit_targets).all(-1) | ~symbols
        right_end = ((end_logits > 0) == (targets == EOS)) | ~mask
        correct = (right_bits & right_end).all(-1)
        stats = LossStats(
            per_step=[loss.item()],
            correct=int(correct.sum()),
            rows=len(targets),
            tokens=int(mask.sum()),
            thinking_steps=len(targets),
        )
        return loss, stats, None

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
        """Answer steps until each row's end logit is positive (then eos), at most
        `max_answer`; `steps` (one per problem) and `trace` do not apply."""
        c, n = self.config, len(input_ids)
        answer_steps = torch.full_like(steps, max_answer)
        at_answer = self.answer_outputs(input_ids, input_mask, answer_steps, max_answer)
        symbols = ((at_answer[..., : c.bits] > 0).long() * self.bit_values).sum(-1)
        tokens = torch.where(at_answer[..., c.bits] > 0, EOS, symbols)
        halt = torch.full((1, n), float("nan"), device=input_ids.device)
        return Generated(pad_after_eos(tokens)[None], torch.ones_like(steps), halt)
