"""The loss hierarchy: which loss updates which parameters, and how often.

    losses:
      outer: {task: 1.0, load_balance: 0.01, z_loss: 0.001}   # every batch, all other params
      slow:                                                   # optional, each on its own group
        - name: router
          params: ["*.router.*"]            # fnmatch patterns over parameter names
          terms: {load_balance: 0.01}
          every: 4                          # one update per 4 batches (gradients averaged)
          lr_scale: 0.1                     # its learning rate: optim.lr * lr_scale
      inner: [...]                          # derived: the fast losses inside the model

Three time scales:
- **fast (inner)**: losses a module applies to its own state while it runs, every token or
  chunk, at training and at test time (the neural memory's ||M(k) - v||^2). They update state,
  not parameters; `th1nker train` lists them in the resolved config's `losses.inner` (derived
  from the model: writing them by hand is refused unless they match).
- **outer**: one optimiser step per batch on the weighted sum of the `outer` terms, over every
  parameter not claimed by a slow group.
- **slow**: every `every` batches, one step on a group's parameters from the mean gradient of
  its own `terms` over those batches. A slow group's parameters get no gradient from the outer
  loss, and the outer parameters none from a slow loss (`Tensor.backward(inputs=...)`).

Terms: `task` (the family's loss), `load_balance` and `z_loss` (the routers', `memory/routing.py`;
averaged over every routed step; absent, so ignored by `outer`, in a model without a router).
Each group has its own AdamW (weight decay on matrices only) under the warm-up + cosine schedule
(of the batch number: a group stepping every k batches follows the same curve).
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import Tensor, nn

from th1nker.config_files import ConfigError
from th1nker.memory.routing import ROUTER_TERMS

TERMS = ("task", *ROUTER_TERMS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_terms(terms: dict[str, float]) -> dict[str, float]:
    for term, weight in terms.items():
        if term not in TERMS:
            raise ValueError(f"unknown loss term {term!r}; allowed: {', '.join(TERMS)}")
        if not weight >= 0:
            raise ValueError(f"weight of {term} must be >= 0, got {weight}")
    return terms


class SlowLoss(_Strict):
    """A slower loss on its own parameter group (module docstring)."""

    name: str = Field(min_length=1)
    params: list[str] = Field(min_length=1, description="fnmatch patterns of parameter names")
    terms: dict[str, float] = Field(min_length=1, description="loss term -> weight")
    every: int = Field(1, ge=1, description="one optimiser step per `every` batches")
    lr_scale: float = Field(1.0, gt=0, description="learning rate: optim.lr * lr_scale")

    _terms = field_validator("terms")(_known_terms)


class LossesConfig(_Strict):
    outer: dict[str, float] = Field(
        default_factory=lambda: {"task": 1.0, "load_balance": 0.01, "z_loss": 0.001},
        description="loss term -> weight of the per-batch loss (router terms count only in a "
        "model with a router)",
    )
    slow: list[SlowLoss] = Field(default_factory=list)
    inner: list[dict[str, str]] | None = Field(
        None, description="derived by `th1nker train`: the fast losses inside the model"
    )

    _terms = field_validator("outer")(_known_terms)

    @model_validator(mode="after")
    def _distinct_names(self) -> LossesConfig:
        names = [s.name for s in self.slow]
        if len(set(names)) != len(names):
            raise ValueError(f"slow loss names repeat: {names}")
        return self


def inner_losses(model: nn.Module) -> list[dict[str, str]]:
    """The fast losses of the model's modules (those with an `inner_loss()` description)."""
    return [
        {"module": name or "model", **module.inner_loss()}
        for name, module in model.named_modules()
        if callable(getattr(module, "inner_loss", None))
    ]


def with_inner_losses(config: Any, model: nn.Module) -> Any:
    """The experiment with `losses.inner` filled in from the model; ConfigError if the config
    already lists other inner losses than the model has (a resumed run lists the same)."""
    derived = inner_losses(model)
    given = config.losses.inner
    if given is not None and given != derived:
        raise ConfigError(
            f"losses.inner is derived from the model's modules and cannot be set: the model has "
            f"{derived}, the config says {given}; leave losses.inner out"
        )
    if given is None and not derived:
        return config  # nothing to show: the resolved config keeps no `inner`
    losses = config.losses.model_copy(update={"inner": derived})
    return config.model_copy(update={"losses": losses})


def lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up to 1 over `warmup` steps, then cosine decay to `floor` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class LossGroup:
    """A loss (weighted terms) and the parameters it updates, with their own optimiser."""

    def __init__(
        self,
        name: str,
        terms: dict[str, float],
        params: dict[str, nn.Parameter],
        every: int,
        lr: float,
        optim: Any,
        total_steps: int,
    ):
        self.name, self.terms, self.params, self.every = name, terms, params, every
        matrices = [p for p in params.values() if p.dim() >= 2]
        vectors = [p for p in params.values() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": matrices, "weight_decay": optim.weight_decay},
                {"params": vectors, "weight_decay": 0.0},
            ],
            lr=lr,
            betas=optim.betas,
        )
        self.base_lr, self.grad_clip = lr, optim.grad_clip
        self.schedule = (optim.warmup_steps, total_steps, optim.min_lr_ratio)

    def lr(self, batch: int) -> float:
        """The learning rate of the step after batch number `batch` (warm-up, then cosine)."""
        return self.base_lr * lr_factor(batch, *self.schedule)

    def loss(self, values: dict[str, Tensor]) -> Tensor | None:
        """sum of weight * term over the terms present (None if none is)."""
        parts = [w * values[t] for t, w in self.terms.items() if t in values and w]
        return torch.stack(parts).sum() if parts else None

    def update(self, batch: int) -> None:
        """After the gradients of batch number `batch` (0-based) are in: step if it is due."""
        if (batch + 1) % self.every == 0:
            params = list(self.params.values())
            if self.every > 1:
                for p in params:
                    if p.grad is not None:
                        p.grad /= self.every
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr(batch)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        """The optimiser and the gradients gathered since its last step."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "grads": {n: None if p.grad is None else p.grad.cpu() for n, p in self.params.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        for name, grad in state.get("grads", {}).items():
            p = self.params[name]
            p.grad = None if grad is None else grad.to(p.device)


class LossPlan:
    """The groups of `losses` over `model`'s trainable parameters: the outer one first (all
    parameters no slow group claims), then the slow groups. ConfigError names the field of a
    pattern that matches nothing, a parameter claimed twice, or router terms without a router
    (`routed`: whether the model has one)."""

    def __init__(
        self, model: nn.Module, losses: LossesConfig, optim: Any, total_steps: int, routed: bool
    ):
        named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        claimed: dict[str, str] = {}
        slow = []
        for i, spec in enumerate(losses.slow):
            field = f"losses.slow[{i}] ({spec.name})"
            params = {
                n: p
                for n, p in named.items()
                if any(fnmatch.fnmatchcase(n, pattern) for pattern in spec.params)
            }
            if not params:
                examples = ", ".join(list(named)[:6])
                raise ConfigError(
                    f"{field}.params: {spec.params} match no parameter; names look like "
                    f"{examples}, ..."
                )
            for n in params:
                if n in claimed:
                    raise ConfigError(f"{field}.params: {n} is already in {claimed[n]}")
                claimed[n] = field
            lr = optim.lr * spec.lr_scale
            slow.append(
                LossGroup(spec.name, spec.terms, params, spec.every, lr, optim, total_steps)
            )
        outer = {n: p for n, p in named.items() if n not in claimed}
        self.groups = [LossGroup("outer", losses.outer, outer, 1, optim.lr, optim, total_steps)]
        self.groups += slow
        self.routed = routed
        for spec in losses.slow:
            if not routed and not {"task"} & set(spec.terms):
                raise ConfigError(
                    f"losses.slow ({spec.name}).terms: {list(spec.terms)} are router terms and "
                    "the model has no router (a mixture memory)"
                )

    @property
    def outer(self) -> LossGroup:
        return self.groups[0]

    def describe(self) -> list[dict[str, Any]]:
        """One row per group: name, terms (those that apply: router terms only in a routed
        model), parameter count, every, lr."""
        applies = lambda term: self.routed or term not in ROUTER_TERMS  # noqa: E731
        return [
            {
                "loss": g.name,
                "terms": " + ".join(f"{w:g} {t}" for t, w in g.terms.items() if w and applies(t)),
                "parameters": sum(p.numel() for p in g.params.values()),
                "every": g.every,
                "lr": g.base_lr,
            }
            for g in self.groups
        ]

    def step(self, values: dict[str, Tensor], batch: int) -> None:
        """Backpropagate each group's loss into its own parameters only, then step the groups
        that are due. Groups whose loss has no graph (nothing to learn by gradient) skip."""
        for g in self.groups:
            if g.every == 1:
                g.optimizer.zero_grad(set_to_none=True)
        losses = [(g, g.loss(values)) for g in self.groups]
        losses = [(g, loss) for g, loss in losses if loss is not None and loss.requires_grad]
        for i, (g, loss) in enumerate(losses):
            if len(self.groups) == 1:
                loss.backward()
            else:
                loss.backward(inputs=list(g.params.values()), retain_graph=i < len(losses) - 1)
        for g, _ in losses:
            g.update(batch)
