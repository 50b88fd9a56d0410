"""Memory addressing, as written in the DNC paper (Graves et al. 2016, Nature, Methods) and the
NTM paper (Graves et al. 2014, section 3.3). Pure functions of tensors, batch-first:
N memory slots of width W, H heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

EPSILON = 1e-6


def content_weighting(
    memory: Float[Tensor, "batch slots width"],
    keys: Float[Tensor, "batch heads width"],
    strengths: Float[Tensor, "batch heads"],
) -> Float[Tensor, "batch heads slots"]:
    """C(M, k, beta)[i] = softmax_i(beta * cos(k, M[i])): where each key matches, how sharply."""
    similarity = torch.einsum(
        "bhw,bnw->bhn",
        F.normalize(keys, dim=-1, eps=EPSILON),
        F.normalize(memory, dim=-1, eps=EPSILON),
    )
    return torch.softmax(strengths[..., None] * similarity, dim=-1)


def retention(
    free_gates: Float[Tensor, "batch reads"], read_weights: Float[Tensor, "batch reads slots"]
) -> Float[Tensor, "batch slots"]:
    """psi = prod_i (1 - f_i w_r,i): how much of each slot the read heads let keep its usage."""
    return torch.prod(1 - free_gates[..., None] * read_weights, dim=1)


def raise_usage(
    usage: Float[Tensor, "batch slots"], write_weights: Float[Tensor, "batch slots"]
) -> Float[Tensor, "batch slots"]:
    """u + w - u * w: the usage after a write with weighting w. The paper's
    u_t = (u_{t-1} + w_{t-1} - u_{t-1} w_{t-1}) psi_t is this after each write, then `retention`
    at the next step; with several writers each raises the usage in turn, so a later writer's
    allocation avoids the slots an earlier one just wrote."""
    return usage + write_weights - usage * write_weights


def allocation_weighting(usage: Float[Tensor, "batch slots"]) -> Float[Tensor, "batch slots"]:
    """a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i], phi = slots sorted by usage, least first.

    The least used slot gets the most; the weights sum to at most 1. (Like the paper, gradients
    do not flow through the sort order.)
    """
    usage = EPSILON + (1 - EPSILON) * usage  # keeps the cumulative product from reaching 0
    sorted_usage, order = torch.sort(usage, dim=-1)
    before = torch.cumprod(sorted_usage, dim=-1) / sorted_usage  # exclusive cumulative product
    sorted_allocation = (1 - sorted_usage) * before
    return torch.zeros_like(usage).scatter(-1, order, sorted_allocation)


def update_precedence(
    precedence: Float[Tensor, "batch slots"], write_weights: Float[Tensor, "batch slots"]
) -> Float[Tensor, "batch slots"]:
    """p_t = (1 - sum_i w_i) p_{t-1} + w: the slots written last, fading with each write."""
    return (1 - write_weights.sum(-1, keepdim=True)) * precedence + write_weights


def update_link(
    link: Float[Tensor, "batch slots slots"],
    precedence: Float[Tensor, "batch slots"],
    write_weights: Float[Tensor, "batch slots"],
) -> Float[Tensor, "batch slots slots"]:
    """L[i, j] = (1 - w[i] - w[j]) L[i, j] + w[i] p_{t-1}[j], diagonal 0: L[i, j] ~ "slot i was
    written right after slot j". `precedence` is the one *before* this write."""
    w_i, w_j = write_weights[..., :, None], write_weights[..., None, :]
    link = (1 - w_i - w_j) * link + w_i * precedence[..., None, :]
    return link * (1 - torch.eye(link.shape[-1], device=link.device, dtype=link.dtype))


def directional_weightings(
    link: Float[Tensor, "batch slots slots"], read_weights: Float[Tensor, "batch reads slots"]
) -> tuple[Float[Tensor, "batch reads slots"], Float[Tensor, "batch reads slots"]]:
    """(forward f = L w, backward b = L^T w) for each read head's previous weighting."""
    forward = torch.einsum("bij,brj->bri", link, read_weights)
    backward = torch.einsum("bji,brj->bri", link, read_weights)
    return forward, backward


def shift_weighting(
    weights: Float[Tensor, "batch heads slots"], shift: Float[Tensor, "batch heads shifts"]
) -> Float[Tensor, "batch heads slots"]:
    """NTM circular convolution: w~[i] = sum_j w[i - j] s[j], shifts j = -S..S (S = shifts // 2)."""
    half = shift.shape[-1] // 2
    rolled = torch.stack([torch.roll(weights, k, dims=-1) for k in range(-half, half + 1)], -1)
    return (rolled * shift[..., None, :]).sum(-1)


def sharpen(
    weights: Float[Tensor, "batch heads slots"], gamma: Float[Tensor, "batch heads"]
) -> Float[Tensor, "batch heads slots"]:
    """NTM sharpening: w[i]^gamma / sum_j w[j]^gamma, gamma >= 1."""
    powered = (weights + EPSILON) ** gamma[..., None]
    return powered / powered.sum(-1, keepdim=True)
