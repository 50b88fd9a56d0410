"""Neural memory (Titans, Behrouz et al. 2024; TTT, Sun et al. 2024): an MLP whose weights are the
memory's state and keep learning while the model runs, at training and at inference alike.

With the paper's symbols, token t sends through the interface a key k_t, a value v_t, a query q_t
(each `width` wide; keys and queries L2-normalized with `normalize_keys`) and the logits of its
gates. Writing is one gradient step on the inner (associative) loss, with momentum and forgetting:

    loss(M; x_t) = || M(k_t) - v_t ||^2                     M(k) = W1 k (depth 1) or
    S_t = eta_t S_{t-1} - theta_t grad loss(M_t'; x_t)       W2 silu(W1 k) (depth 2)
    M_t = (1 - alpha_t) M_{t-1} + S_t
    y_t = M_t'(q_t)                                          (the read)

theta_t = max_lr * sigmoid(.) is the per-token learning rate, eta_t = sigmoid(.) the momentum
("past surprise"; 0 without `momentum`) and alpha_t = sigmoid(.) the forgetting gate (0 without
`decay`), all three read from the interface. With `max_grad_norm` c, each token's gradient is first
scaled to norm at most c (titans-pytorch has the same option): the inner loop then moves by a
bounded step per token instead of diverging when the values grow. t' is the first token of t's
chunk: the `chunk_size` tokens of a chunk (the test-time batch) take their gradients at, and read
from, the same weights M_t', which are re-based (t' moves on) after the chunk's last token. With
chunk_size 1 every token reads and differentiates the weights left by the one before it. The
gradients are written out by hand (the module is small), so the inner update needs no autograd and
runs under `torch.no_grad` and `torch.inference_mode` too; the outer loss still trains the initial
weights M_0 and whatever feeds the interface through the inner updates (their graph is kept, or cut
every `detach_chunks` chunks).

Two forms compute the same thing: `forward(interface, state)`, one token (the memory contract),
and `run(interfaces, state)`, whole chunks at once: the reads and inner gradients of a chunk are
batched, and the recurrence is summed in closed form,

    S_n = P_n S_0 - sum_i E[n, i] theta_i u_i
    M_n = G M_0 + (sum_t g_t P_t) S_0 - sum_i theta_i (sum_{t >= i} g_t E[t, i]) u_i

with u_i = grad loss(M_0; x_i), E[t, i] = prod_{i < j <= t} eta_j, P_t = prod_{j <= t} eta_j,
g_t = prod_{t < j <= n} (1 - alpha_j) and G = prod_{j <= n} (1 - alpha_j), so that the weighted
sums of the u_i are two matrix products, never one gradient per token.

Run `python -m th1nker.memory.neural` for a smoke check.
"""

from __future__ import annotations

import math
from typing import Literal, TypedDict

import torch
from jaxtyping import Float, Int
from pydantic import Field
from torch import Tensor, nn

from th1nker.config_files import validate
from th1nker.memory.flags import ReadOutFlags
from th1nker.memory.readout import ReadOut
from th1nker.memory.registry import MemorySpec, register_memory
from th1nker.memory.state import Recurrent

Weights = dict[str, Tensor]  # "w1" [batch, hidden, width] (depth 1: [batch, width, width]), "w2"


class NeuralMemoryState(TypedDict):
    weights: Weights  # M_t
    base: Weights  # M_t': the weights the current chunk reads and differentiates
    momentum: Weights  # S_t
    step: Int[Tensor, " batch"]  # tokens written so far


@register_memory
class NeuralSpec(MemorySpec):
    """An MLP memory of `depth` 1 or 2 (`hidden` wide) over keys and values of `width`, updated
    by gradient steps at test time (module docstring)."""

    type: Literal["neural"] = "neural"
    width: int = Field(16, ge=1)
    depth: Literal[1, 2] = 2
    hidden: int = Field(32, ge=1, description="depth 2: the MLP's hidden width")
    chunk_size: int = Field(
        1, ge=1, description="test-time batch: tokens sharing one set of weights before re-basing"
    )
    momentum: bool = True
    decay: bool = True
    max_lr: float = Field(
        0.2,
        gt=0,
        description="theta_t = max_lr * sigmoid(.): with normalized keys 0.5 writes a value "
        "exactly in one step at depth 1, more overshoots; depth 2 diverged near 0.5 in tests",
    )
    normalize_keys: bool = True
    max_grad_norm: float | None = Field(
        None,
        gt=0,
        description="clip each token's inner gradient to this norm (None: no clipping); keeps "
        "the inner loop from diverging when values are large (MQAR diverged without it)",
    )
    detach_chunks: int = Field(
        0, ge=0, description="cut the memory's graph every k chunks (0: keep it whole)"
    )
    flags: ReadOutFlags = Field(default_factory=ReadOutFlags)

    def build(self) -> NeuralMemory:
        return NeuralMemory(self)


class NeuralMemory(Recurrent):
    """Interface per token: [k (width), v (width), q (width), lr logit, (momentum logit),
    (decay logit)]; output: the read M_t'(q_t) through the read-out flags."""

    reads = 1

    def __init__(self, spec: NeuralSpec | None = None, **fields):
        """From a spec, or from its fields (`NeuralMemory(width=8, depth=1, chunk_size=4)`)."""
        super().__init__()
        spec = spec or validate(NeuralSpec, fields, "neural memory")
        self.spec, width = spec, spec.width
        inner = spec.hidden if spec.depth == 2 else width
        self.initial = nn.ParameterDict(
            {"w1": nn.Parameter(torch.randn(inner, width) / math.sqrt(width))}
        )
        if spec.depth == 2:
            self.initial["w2"] = nn.Parameter(torch.randn(width, inner) / math.sqrt(inner))
        self.gates = 1 + spec.momentum + spec.decay
        self.interface_size = 3 * width + self.gates
        self.readout = ReadOut(1, width, self.interface_size, spec.flags)
        self.output_size = self.readout.size

    def inner_loss(self) -> dict[str, str]:
        """The fast loss this memory applies to its own state (shown in the resolved config's
        `losses.inner` by `th1nker train`)."""
        s = self.spec
        gates = ["theta_t (lr) = max_lr * sigmoid(.)"]
        gates += ["eta_t (momentum) = sigmoid(.)"] if s.momentum else []
        gates += ["alpha_t (forgetting) = sigmoid(.)"] if s.decay else []
        cut = f"cut every {s.detach_chunks} chunks" if s.detach_chunks else "kept whole"
        clip = f"; per-token gradient norm <= {s.max_grad_norm}" if s.max_grad_norm else ""
        return {
            "loss": "||M(k_t) - v_t||^2",
            "updates": f"the depth-{s.depth} memory MLP's weights (its state, per sequence)",
            "every": f"token, read at the start of each chunk of {s.chunk_size}",
            "rate": f"{', '.join(gates)}; max_lr {s.max_lr}{clip}",
            "graph": cut,
        }

    def initial_state(self, batch_size: int, device: torch.device) -> NeuralMemoryState:
        weights = {
            name: w.to(device).expand(batch_size, *w.shape) for name, w in self.initial.items()
        }
        return NeuralMemoryState(
            weights=weights,
            base=weights,
            momentum={name: torch.zeros_like(w) for name, w in weights.items()},
            step=torch.zeros(batch_size, dtype=torch.long, device=device),
        )

    def split(
        self, interface: Float[Tensor, "*lead interface"]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(k, v, q, theta, eta, alpha) of each token; the gates are [*lead]."""
        if interface.shape[-1] != self.interface_size:
            raise ValueError(
                f"neural memory: interface has {interface.shape[-1]} features, expected "
                f"{self.interface_size} (3 * width + {self.gates} gates)"
            )
        w = self.spec.width
        k, v, q = interface[..., :w], interface[..., w : 2 * w], interface[..., 2 * w : 3 * w]
        if self.spec.normalize_keys:
            k, q = nn.functional.normalize(k, dim=-1), nn.functional.normalize(q, dim=-1)
        logits = interface[..., 3 * w :].unbind(-1)
        theta = self.spec.max_lr * torch.sigmoid(logits[0])
        zero = torch.zeros_like(theta)
        eta = torch.sigmoid(logits[1]) if self.spec.momentum else zero
        alpha = torch.sigmoid(logits[-1]) if self.spec.decay else zero
        return k, v, q, theta, eta, alpha

    def apply(self, weights: Weights, x: Float[Tensor, "batch n width"]) -> Tensor:
        """M(x) with each row's own weights: [batch, n, width]."""
        h = torch.einsum("bnw,bhw->bnh", x, weights["w1"])
        if "w2" not in weights:
            return h
        return torch.einsum("bnh,bwh->bnw", nn.functional.silu(h), weights["w2"])

    def weighted_gradients(
        self,
        weights: Weights,
        k: Float[Tensor, "batch n width"],
        v: Float[Tensor, "batch n width"],
        c: Float[Tensor, "batch n m"],
    ) -> Weights:
        """sum_i c[:, i, j] * g_i for each of m columns j of the coefficients, g_i = grad_W
        ||M(k_i) - v_i||^2 at `weights` (scaled to norm `max_grad_norm` where it is larger):
        each weight gets a leading [batch, m]. Every g_i is a sum of outer products, so its norm
        ||g_i||^2 = ||dh_i||^2 ||k_i||^2 + ||e_i||^2 ||a_i||^2 needs no g_i either."""
        h = torch.einsum("bnw,bhw->bnh", k, weights["w1"])
        if "w2" not in weights:
            error = 2 * (h - v)
            c = self._clipped(c, error.square().sum(-1) * k.square().sum(-1))
            return {"w1": torch.einsum("bnm,bnh,bnw->bmhw", c, error, k)}
        a = nn.functional.silu(h)
        error = 2 * (torch.einsum("bnh,bwh->bnw", a, weights["w2"]) - v)
        s = torch.sigmoid(h)
        dh = torch.einsum("bnw,bwh->bnh", error, weights["w2"]) * s * (1 + h * (1 - s))
        squared = dh.square().sum(-1) * k.square().sum(-1) + error.square().sum(
            -1
        ) * a.square().sum(-1)
        c = self._clipped(c, squared)
        return {
            "w1": torch.einsum("bnm,bnh,bnw->bmhw", c, dh, k),
            "w2": torch.einsum("bnm,bnw,bnh->bmwh", c, error, a),
        }

    def _clipped(
        self, c: Float[Tensor, "batch n m"], squared_norms: Float[Tensor, "batch n"]
    ) -> Float[Tensor, "batch n m"]:
        """The coefficients times min(1, max_grad_norm / ||g_i||) (unchanged without it)."""
        if self.spec.max_grad_norm is None:
            return c
        norms = squared_norms.clamp_min(1e-24).sqrt()
        return c * (self.spec.max_grad_norm / norms).clamp(max=1.0).unsqueeze(-1)

    def forward(
        self, interface: Float[Tensor, "batch interface"], state: NeuralMemoryState
    ) -> tuple[Float[Tensor, "batch output"], NeuralMemoryState]:
        """One token: read at M_t', then write (the step-by-step form of the recurrence)."""
        k, v, q, theta, eta, alpha = (x.unsqueeze(1) for x in self.split(interface))
        base = state["base"]
        read = self.apply(base, q)[:, 0]
        grads = self.weighted_gradients(base, k, v, theta.unsqueeze(-1))
        momentum, weights = {}, {}
        for name, w in state["weights"].items():
            lead = (-1,) + (1,) * (w.dim() - 1)
            momentum[name] = eta.view(lead) * state["momentum"][name] - grads[name][:, 0]
            weights[name] = (1 - alpha).view(lead) * w + momentum[name]
        step = state["step"] + 1
        chunk, cuts = self.spec.chunk_size, self.spec.detach_chunks
        rebase = step % chunk == 0
        cut = rebase & (step % (chunk * max(cuts, 1)) == 0) & (cuts > 0)
        new_base = {}
        for name, w in weights.items():
            lead = (-1,) + (1,) * (w.dim() - 1)
            if cuts:
                w = weights[name] = torch.where(cut.view(lead), w.detach(), w)
                s = momentum[name]
                momentum[name] = torch.where(cut.view(lead), s.detach(), s)
            new_base[name] = torch.where(rebase.view(lead), w, base[name])
        new_state = NeuralMemoryState(weights=weights, base=new_base, momentum=momentum, step=step)
        return self.readout(read, interface), new_state

    def run(
        self,
        xs: Float[Tensor, "batch time interface"],
        state: NeuralMemoryState | None = None,
        detach_every: int = 0,
    ) -> tuple[Float[Tensor, "batch time output"], NeuralMemoryState]:
        """All tokens of `xs`, whole chunks at a time (the parallel form; the last chunk may be
        short): the same outputs and state as `forward` token by token. The state must be at a
        chunk boundary; the graph is cut by `detach_chunks`, not by `detach_every`."""
        if detach_every:
            raise ValueError("neural memory: the graph is cut by its detach_chunks field")
        if state is None:
            state = self.init_state(xs.shape[0], xs.device)
        chunk = self.spec.chunk_size
        if bool((state["step"] % chunk != 0).any()):
            raise ValueError(
                f"neural memory: run() starts at a chunk boundary (step a multiple of "
                f"chunk_size {chunk}); continue a partial chunk token by token with forward()"
            )
        k, v, q, theta, eta, alpha = self.split(xs)
        weights, momentum, step = state["weights"], state["momentum"], state["step"]
        reads = []
        for start in range(0, xs.shape[1], chunk):
            part, base = slice(start, start + chunk), weights
            reads.append(self.apply(weights, q[:, part]))
            weights, momentum = self._chunk(
                weights, momentum, k[:, part], v[:, part], theta[:, part], eta[:, part],
                alpha[:, part],
            )  # fmt: skip
            step = step + q[:, part].shape[1]
            cuts = self.spec.detach_chunks
            if cuts and int(step[0]) % (chunk * cuts) == 0:
                weights = {name: w.detach() for name, w in weights.items()}
                momentum = {name: s.detach() for name, s in momentum.items()}
        if int(step[0]) % chunk == 0:  # else the last chunk goes on from `base`
            base = weights
        new_state = NeuralMemoryState(weights=weights, base=base, momentum=momentum, step=step)
        out = self.readout(torch.cat(reads, dim=1).flatten(0, 1), xs.flatten(0, 1))
        return out.unflatten(0, xs.shape[:2]), new_state

    def _chunk(self, weights, momentum, k, v, theta, eta, alpha) -> tuple[Weights, Weights]:
        """(M_n, S_n) after the n tokens of one chunk, by the closed form of the docstring."""
        n = k.shape[1]
        later = torch.ones(n, n, dtype=torch.bool, device=k.device).tril(-1)  # [t, i]: t > i
        eye = torch.eye(n, dtype=torch.bool, device=k.device)
        factors = torch.where(later, eta.unsqueeze(-1), torch.ones_like(eta).unsqueeze(-1))
        decayed = torch.where(later | eye, factors.cumprod(dim=1), 0.0)  # E[t, i]
        carried = eta.cumprod(dim=1)  # P_t
        kept = (1 - alpha).flip(1).cumprod(dim=1).flip(1)  # prod_{j >= t} (1 - alpha_j)
        forget = torch.cat((kept[:, 1:], torch.ones_like(kept[:, :1])), dim=1)  # g_t
        to_momentum = decayed[:, -1, :] * theta  # [batch, i]
        to_weights = torch.einsum("bt,bti->bi", forget, decayed) * theta
        grads = self.weighted_gradients(
            weights, k, v, torch.stack((to_momentum, to_weights), dim=-1)
        )
        momentum_carry, weights_carry = carried[:, -1], (forget * carried).sum(dim=1)
        new_momentum, new_weights = {}, {}
        for name, w in weights.items():
            lead = (-1,) + (1,) * (w.dim() - 1)
            s = momentum[name]
            new_momentum[name] = momentum_carry.view(lead) * s - grads[name][:, 0]
            new_weights[name] = (
                kept[:, 0].view(lead) * w + weights_carry.view(lead) * s - grads[name][:, 1]
            )
        return new_weights, new_momentum


def _smoke() -> None:
    torch.manual_seed(0)
    memory = NeuralMemory(width=8, hidden=16, chunk_size=4)
    xs = torch.randn(2, 10, memory.interface_size)
    reads, state = memory.run(xs)
    stepped = memory.init_state(2)
    for t in range(10):
        read, stepped = memory(xs[:, t], stepped)
        torch.testing.assert_close(read, reads[:, t], atol=1e-5, rtol=1e-4)
    print(f"neural memory ok: reads {tuple(reads.shape)}, chunked == step by step")


if __name__ == "__main__":
    _smoke()
