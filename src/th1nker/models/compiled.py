"""The compiled family: a RASP program compiled into transformer weights (th1nker.rasp), run by
`th1nker eval` / `th1nker solve` like a trained model and fine-tuned by `th1nker train` from its
compiled weights.

    model: {kind: compiled, program: addition, base: 10, max_seq_len: 64}

The model is compiled when it is built (the program is code: rasp/arithmetic.py's
TASK_PROGRAMS), so a checkpoint is the config plus the safetensors of the weights, compiled or
fine-tuned. Fine-tuning moves only the weights the compiler set (`trainable: compiled`: the
gradients of the zeros are masked) unless `trainable: all`. The answer is read at positions
0, 1, .. of the problem: token logits are the output SOp's residual directions (one per token id
it can write) times `logit_scale`.
"""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Bool, Int
from pydantic import Field, field_validator
from torch import Tensor
from torch.nn import functional as F

from th1nker.models.family import Batch, Carry, Family, FamilyConfig, LossStats, register_family
from th1nker.models.generation import Generated, pad_after_eos
from th1nker.rasp.arithmetic import TASK_PROGRAMS
from th1nker.rasp.compiler import DEFAULT_COLDNESS, CompiledProgram, compile_program
from th1nker.tasks.scheme import TaskScheme
from th1nker.tasks.vocab import PAD, VOCAB_SIZE


class CompiledConfig(FamilyConfig):
    """A compiled RASP program for the task language (module docstring)."""

    kind: Literal["compiled"] = Field(description="which model family: compiled")
    program: str = Field("addition", description=f"the program: {', '.join(TASK_PROGRAMS)}")
    base: int = Field(10, ge=2, le=256, description="the number base it is compiled for")
    max_seq_len: int = Field(64, ge=4, le=512, description="longest problem (input tokens)")
    coldness: float = Field(DEFAULT_COLDNESS, gt=0, description="attention inverse temperature")
    logit_scale: float = Field(10.0, gt=0, description="token logits = scale x directions")
    restoring: bool = Field(
        True,
        description="lookup MLPs as steps that remove small errors (rasp/blocks.py), so "
        "that fine-tuning does not compound them layer by layer",
    )
    trainable: Literal["compiled", "all"] = Field(
        "compiled",
        description="which weights fine-tuning moves: the compiled (non-zero) ones, keeping "
        "the program's structure, or all (one AdamW step moves every zero by ~lr, enough to "
        "break an exact program)",
    )

    @field_validator("program")
    @classmethod
    def _known(cls, program: str) -> str:
        if program not in TASK_PROGRAMS:
            raise ValueError(f"program {program!r}: known programs are {sorted(TASK_PROGRAMS)}")
        return program

    def describe(self) -> str:
        return f"compiled RASP {self.program} (base {self.base}, up to {self.max_seq_len} tokens)"

    def check_task(self, task: TaskScheme) -> None:
        refusal = TASK_PROGRAMS[self.program].refusal(task, self.base)
        if refusal is not None:
            raise ValueError(f"model.program {self.program}: {refusal}")
        if task.max_length > self.max_seq_len:
            raise ValueError(
                f"model.max_seq_len {self.max_seq_len} is smaller than task.max_length "
                f"{task.max_length}: compile for longer problems"
            )

    def input_refusal(self, tokens: int) -> str | None:
        if tokens <= self.max_seq_len:
            return None
        return f"{tokens} input tokens; it was compiled for at most {self.max_seq_len}"


@register_family
class Compiled(Family):
    """The compiled transformer and its readout (module docstring)."""

    config_class = CompiledConfig

    def __init__(self, config: CompiledConfig):
        super().__init__(config)
        entry = TASK_PROGRAMS[config.program]
        self.compiled: CompiledProgram = compile_program(
            entry.make(config.base), entry.vocab(config.base), config.max_seq_len,
            coldness=config.coldness, restoring=config.restoring,
        )  # fmt: skip
        self.transformer = self.compiled.model
        self.vocab_ids: list[int] = list(entry.vocab(config.base))
        layout = self.compiled.layout
        readout = torch.zeros(len(layout), VOCAB_SIZE)
        for direction in layout.of(self.compiled.output_name):
            readout[layout.index(direction), int(direction.value)] = config.logit_scale
        self.register_buffer("readout", readout)
        position = torch.full((VOCAB_SIZE,), -1, dtype=torch.long)
        position[self.vocab_ids] = torch.arange(len(self.vocab_ids))
        self.register_buffer("token_position", position, persistent=False)
        if config.trainable == "compiled":
            for parameter in self.transformer.parameters():
                keep = parameter.detach() != 0
                parameter.register_hook(lambda grad, keep=keep: grad * keep.to(grad.device))

    def logits(
        self, input_ids: Int[Tensor, "batch seq"], input_mask: Bool[Tensor, "batch seq"]
    ) -> Tensor:
        """Token logits [batch, seq, VOCAB_SIZE] at each position (the answer's i-th token at
        position i). A token the program does not read is refused by name."""
        ids, valid = _packed_left(input_ids, input_mask)
        positions = self.token_position[ids.clamp(min=0)]
        unknown = valid & (positions < 0)
        if unknown.any():
            token = int(ids[unknown][0])
            raise ValueError(
                f"input token id {token} is not read by the compiled {self.config.program} "
                f"(it reads {self.vocab_ids})"
            )
        residual = self.transformer(positions.clamp(min=0), valid)
        return residual @ self.readout

    def loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, LossStats, Carry]:
        logits = self.logits(batch["input_ids"], batch["input_mask"])
        targets, mask = batch["target_ids"], batch["target_mask"]
        logits = _fit(logits, targets.shape[1])
        loss = F.cross_entropy(logits[mask], targets[mask])
        right = ((logits.argmax(-1) == targets) | ~mask).all(-1)
        stats = LossStats([loss.item()], int(right.sum()), len(targets), int(mask.sum()),
                          len(targets))  # fmt: skip
        return loss, stats, carry

    @torch.no_grad()
    def generate(self, input_ids, input_mask, steps, max_answer, trace=False, use_halting=True):
        answers = _fit(self.logits(input_ids, input_mask), max_answer).argmax(-1)
        halt = torch.full((1, len(answers)), float("nan"), device=answers.device)
        return Generated(pad_after_eos(answers)[None], torch.ones_like(steps), halt)


def _packed_left(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Each row's tokens moved to the front (the compiled program reads from position 0)."""
    order = torch.sort((~mask).int(), dim=1, stable=True).indices
    return ids.gather(1, order), mask.gather(1, order)


def _fit(logits: Tensor, width: int) -> Tensor:
    """Logits [batch, width, vocab]: cut, or padded with `pad` where the input is shorter."""
    if logits.shape[1] >= width:
        return logits[:, :width]
    extra = torch.full((*logits.shape[:1], width - logits.shape[1], logits.shape[2]), -1e4,
                       device=logits.device, dtype=logits.dtype)  # fmt: skip
    extra[..., PAD] = 0.0
    return torch.cat((logits, extra), dim=1)
