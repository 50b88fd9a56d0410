"""A mixture of experts: a router sends each row (a token, or a thinking step) to some of its
experts (memories, controllers, or whole sub-networks: `{type: network, network: {...}}`) and
mixes what they return; an expert a row is not sent to neither
runs for it nor changes its state, so the router also chooses which memory learns (a neural
memory not selected receives no test-time update).

Routing (`router`):
- `top_k` (token choice, Shazeer et al. 2017; Switch, Fedus et al. 2021): p = softmax(W x
  [+ noise]), each row goes to its k most probable experts with weights p renormalized over them.
  `noise` adds N(0, noise^2) to the logits in training (exploration).
- `expert_choice` (Zhou et al. 2022): each expert takes the `capacity` rows of the batch that
  give it the highest p; a row may get several experts or none.
`capacity_factor` c bounds the rows per expert and step to ceil(c * rows * k / experts) in
`top_k` routing; rows beyond it (lower p first) are dropped for that expert: its weight for them
is 0 and its state for them stays (overflow is documented, not hidden: `routed` shows it).

Each expert's interface and output go through their own linear maps (`width` wide on both
sides), and the output is sum_e g_e W_e^out(expert_e(W_e^in x)). The router's view of the step
is kept in the state (`probs`, `logits`, `routed`, all [batch, experts]), from which
`routing.py` computes the load-balancing and z losses and the load and entropy statistics
(`th1nker train` adds the losses to the outer loss and logs the statistics).

Run `python -m th1nker.memory.mixture` for a smoke check.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from jaxtyping import Float
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor, nn

from th1nker.config_files import registered, validate
from th1nker.memory.registry import (
    CONTROLLERS,
    MEMORIES,
    ControllerSpec,
    MemorySpec,
    register_memory,
)
from th1nker.memory.routing import router_stats
from th1nker.memory.state import Recurrent, State, Stateful


class RouterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["top_k", "expert_choice"] = "top_k"
    top_k: int = Field(1, ge=1, description="experts per row (top_k); rows per expert share")
    noise: float = Field(0.0, ge=0, description="std of the logit noise in training (top_k)")
    capacity_factor: float | None = Field(
        None, gt=0, description="rows per expert <= ceil(c * rows * k / experts); None: no bound"
    )


@register_memory
class MixtureSpec(MemorySpec):
    """`experts` (memory specs) behind a router, all seen through `width`-wide maps."""

    type: Literal["mixture"] = "mixture"
    width: int = Field(16, ge=1)
    experts: list[Any] = Field(min_length=2)
    router: RouterSpec = Field(default_factory=RouterSpec)

    @field_validator("experts")
    @classmethod
    def _typed_experts(cls, experts: list[Any]) -> list[MemorySpec | ControllerSpec]:
        return [expert_spec(e) for e in experts]

    def build(self) -> MixtureOfExperts:
        return MixtureOfExperts(self)


class MixtureOfExperts(Recurrent):
    """interface [batch, width] -> output [batch, width], routed over the expert memories."""

    reads = 1

    def __init__(self, spec: MixtureSpec | None = None, **fields):
        """From a spec, or from its fields (`MixtureOfExperts(experts=[{...}, {...}])`)."""
        super().__init__()
        spec = spec or validate(MixtureSpec, fields, "mixture of experts")
        self.spec, self.n = spec, len(spec.experts)
        if spec.router.top_k > self.n:
            raise ValueError(f"mixture: router.top_k {spec.router.top_k} > {self.n} experts")
        built = [_build_expert(e, spec.width) for e in spec.experts]
        self.experts = nn.ModuleList(module for module, _, _ in built)
        self.to_experts = nn.ModuleList(nn.Linear(spec.width, size) for _, size, _ in built)
        self.from_experts = nn.ModuleList(nn.Linear(size, spec.width) for _, _, size in built)
        self.router = nn.Linear(spec.width, self.n, bias=False)
        self.interface_size = self.output_size = spec.width

    def initial_state(self, batch_size: int, device: torch.device) -> State:
        zeros = torch.zeros(batch_size, self.n, device=device)
        experts = {str(i): e.init_state(batch_size, device) for i, e in enumerate(self.experts)}
        return {"experts": experts, "probs": zeros, "logits": zeros, "routed": zeros}

    def capacity(self, rows: int) -> int:
        """The most rows one expert takes per step: ceil(c * rows * k / experts), with c 1 for
        expert choice and no bound for top_k when `capacity_factor` is None."""
        factor, k = self.spec.router.capacity_factor, self.spec.router.top_k
        if factor is None and self.spec.router.kind == "top_k":
            return rows
        return min(rows, math.ceil((factor or 1.0) * rows * k / self.n))

    def route(
        self, x: Float[Tensor, "batch width"]
    ) -> tuple[Float[Tensor, "batch experts"], Float[Tensor, "batch experts"], Tensor]:
        """(logits, probs, gates): gates [batch, experts] are the mixing weights, 0 where a row
        is not sent (after the capacity bound)."""
        router = self.spec.router
        logits = self.router(x)
        noisy = logits
        if router.noise and self.training:
            noisy = logits + router.noise * torch.randn_like(logits)
        probs = torch.softmax(noisy, dim=-1)
        limit = self.capacity(x.shape[0])
        if router.kind == "expert_choice":
            rows = probs.topk(limit, dim=0).indices  # [limit, experts]: each expert's rows
            sent = torch.zeros_like(probs).scatter(0, rows, 1.0).bool()
            return logits, probs, torch.where(sent, probs, 0.0)
        top = torch.zeros_like(probs).scatter(1, probs.topk(router.top_k, -1).indices, 1.0).bool()
        # per expert, the `limit` rows of highest probability among those it is sent
        rank = torch.where(top, probs, -1.0).argsort(dim=0, descending=True).argsort(dim=0)
        sent = top & (rank < limit)
        share = torch.where(top, probs, 0.0).sum(dim=-1, keepdim=True)
        return logits, probs, torch.where(sent, probs, 0.0) / share  # over each row's top k

    def forward(
        self, interface: Float[Tensor, "batch width"], state: State
    ) -> tuple[Float[Tensor, "batch width"], State]:
        if interface.shape[-1] != self.interface_size:
            raise ValueError(
                f"mixture: interface has {interface.shape[-1]} features, expected "
                f"{self.interface_size}"
            )
        logits, probs, gates = self.route(interface)
        out = interface.new_zeros(interface.shape)
        experts = {}
        for i, expert in enumerate(self.experts):
            sent = gates[:, i] > 0
            old = state["experts"][str(i)]
            if not bool(sent.any()):
                experts[str(i)] = old
                continue
            y, new = expert(self.to_experts[i](interface), old)
            experts[str(i)] = _where_sent(sent, new, old)
            out = out + gates[:, i : i + 1] * self.from_experts[i](y)
        routed = (gates > 0).to(probs.dtype)
        return out, {"experts": experts, "probs": probs, "logits": logits, "routed": routed}


def expert_spec(value: Any) -> MemorySpec | ControllerSpec:
    """An expert spec mapping -> its registered memory or controller spec (looked up at call
    time: types registered after this module count too)."""
    return registered({**MEMORIES, **CONTROLLERS}, "type", None, "expert type")(value)


def _build_expert(spec: MemorySpec | ControllerSpec, width: int) -> tuple[Stateful, int, int]:
    """(module, input size, output size): a memory reads its interface, a controller (LSTM,
    GRU, MLP, transformer) `width` features; a `network` expert is a whole sub-network."""
    if isinstance(spec, ControllerSpec):
        module = spec.build(width)
        return module, width, module.hidden
    module = spec.build()
    return module, module.interface_size, module.output_size


def _where_sent(sent: Tensor, new: Any, old: Any) -> Any:
    """The new state in the rows sent to the expert, the old one elsewhere (nested dicts)."""
    if isinstance(new, dict):
        return {key: _where_sent(sent, new[key], old[key]) for key in new}
    return torch.where(sent.view(-1, *[1] * (new.dim() - 1)), new, old)


def _smoke() -> None:
    torch.manual_seed(0)
    mixture = MixtureOfExperts(
        width=8,
        experts=[{"type": "neural", "width": 4, "hidden": 8}, {"type": "episodic", "width": 4}],
        router={"top_k": 1, "capacity_factor": 1.0},
    )
    out, state = mixture(torch.randn(6, 8), mixture.init_state(6))
    print(f"mixture ok: out {tuple(out.shape)}, {router_stats(state)}")


if __name__ == "__main__":
    _smoke()
