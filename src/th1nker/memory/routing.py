"""What routers did during a forward pass: their losses and statistics, for the training loop.

A mixture's state after a step holds the router's view of it (`probs`, `logits`, `routed`, each
[batch, experts]; `mixture.py`). From one step:

    load_balance = E * sum_e f_e P_e     f_e: share of rows sent to e (over k), P_e: mean prob
                                         (Switch, Fedus et al. 2021; 1 when uniform, E collapsed)
    z_loss       = mean_b logsumexp(logits_b)^2                 (ST-MoE, Zoph et al. 2022)
    load_e = share of rows sent to e,   entropy = mean_b H(probs_b)

`RoutingLog(model)` watches every mixture in a model through forward hooks (the modules keep no
record themselves): inside `with log.collecting():` each step of each mixture is noted, and
`log.losses()` gives the two losses averaged over all noted steps and mixtures, `log.stats()`
the load and entropy of each mixture by its module name. Outside `collecting` the hooks do
nothing (evaluation pays nothing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from th1nker.memory.state import State

ROUTER_TERMS = ("load_balance", "z_loss")


def router_losses(state: State, top_k: int = 1) -> dict[str, Tensor]:
    """`load_balance` (E * sum_e f_e P_e, 1 when uniform) and `z_loss` of one routed step."""
    probs, routed = state["probs"], state["routed"]
    experts = probs.shape[-1]
    share = routed.mean(dim=0) / top_k
    balance = experts * (share * probs.mean(dim=0)).sum()
    z_loss = torch.logsumexp(state["logits"], dim=-1).pow(2).mean()
    return {"load_balance": balance, "z_loss": z_loss}


def router_stats(state: State) -> dict[str, Any]:
    """Per-expert load (share of rows sent) and the mean routing entropy, as floats."""
    probs = state["probs"].detach()
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()
    return {
        "load": state["routed"].detach().mean(dim=0).tolist(),
        "entropy": float(entropy),
    }


class RoutingLog:
    """Notes the routed steps of every module of `model` that has a `router` and a
    `spec.router.top_k` (the `mixture` memory), while `collecting`."""

    def __init__(self, model: nn.Module):
        self.names = {
            module: name
            for name, module in model.named_modules()
            if isinstance(getattr(module, "router", None), nn.Module) and hasattr(module, "spec")
        }
        self.steps: list[tuple[nn.Module, State]] = []
        self._active = False
        for module in self.names:
            module.register_forward_hook(self._note)

    def __bool__(self) -> bool:
        """Whether the model has any router."""
        return bool(self.names)

    def _note(self, module: nn.Module, inputs: Any, output: tuple[Tensor, State]) -> None:
        if self._active:
            state = output[1]
            self.steps.append((module, {k: state[k] for k in ("probs", "logits", "routed")}))

    @contextlib.contextmanager
    def collecting(self) -> Iterator[RoutingLog]:
        """Note the routed steps of the forward passes inside (forgetting earlier ones)."""
        self.steps, self._active = [], True
        try:
            yield self
        finally:
            self._active = False

    def losses(self) -> dict[str, Tensor]:
        """Each router term averaged over the noted steps (empty without any)."""
        if not self.steps:
            return {}
        per_step = [router_losses(state, module.spec.router.top_k) for module, state in self.steps]
        return {term: torch.stack([s[term] for s in per_step]).mean() for term in ROUTER_TERMS}

    def stats(self) -> dict[str, dict[str, Any]]:
        """{module name: {load: [per expert], entropy}} averaged over that module's steps."""
        out: dict[str, dict[str, Any]] = {}
        for module, name in self.names.items():
            noted = [router_stats(state) for m, state in self.steps if m is module]
            if noted:
                loads = torch.tensor([s["load"] for s in noted]).mean(dim=0)
                entropy = sum(s["entropy"] for s in noted) / len(noted)
                out[name] = {"load": loads.tolist(), "entropy": entropy}
        return out
