"""Elastic shared MLP (Once-for-All style): one full-size weight, sliced per active subnet.

Channels are chosen by selections (``search_spaces.elastic.Sel``); index selections arise where
a tensor is the concatenation of two elastic halves, e.g. RandLA-Net's [neighbour features,
relative-position encoding] (``halves``, ``pair``).

The same class is the static layer of an extracted subnet: with every selection ``None`` the
forward uses the weights as they are, with no slicing overhead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.elastic import (
    Sel,
    permute_,
    permute_batch_norm_,
    sliced_batch_norm,
    take,
)

#: RandLA-Net's activation (LeakyReLU with slope 0.2, as in the reference implementation).
NEG_SLOPE = 0.2


def halves(active: int, full: int) -> Sel:
    """Channels of a concatenation of two halves of ``full // 2`` with ``active // 2`` of each
    active: ``[0, a/2) ∪ [f/2, f/2 + a/2)``; ``None`` when everything is active."""
    if active == full:
        return None
    h_a, h_f = active // 2, full // 2
    return torch.cat([torch.arange(h_a), h_f + torch.arange(h_a)])


def pair(first: int, first_full: int, second: int) -> Sel:
    """Channels of a concatenation [first (``first_full`` wide) | second] with ``first`` and
    ``second`` channels of each active."""
    return torch.cat([torch.arange(first), first_full + torch.arange(second)])


class SharedMLP(nn.Module):
    """Pointwise Linear (+ BatchNorm) (+ LeakyReLU) over the last (channel) dimension."""

    def __init__(self, c_in: int, c_out: int, *, bn: bool = True, act: bool = True,
                 bias: bool = True):
        super().__init__()
        self.c_in, self.c_out, self.act = c_in, c_out, act
        self.weight = nn.Parameter(torch.empty(c_out, c_in))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        # a conv followed by BN needs no bias (BN's beta is one), as in the reference code
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias and not bn else None
        self.bn = nn.BatchNorm1d(c_out, eps=1e-6, momentum=0.01) if bn else None

    def forward(self, x: torch.Tensor, out_sel: Sel = None, in_sel: Sel = None) -> torch.Tensor:
        w = take(take(self.weight, out_sel, 0), in_sel, 1)
        b = None if self.bias is None else take(self.bias, out_sel, 0)
        y = F.linear(x, w, b)
        if self.bn is not None:
            y = sliced_batch_norm(y.reshape(-1, y.shape[-1]), self.bn, out_sel).reshape(y.shape)
        return F.leaky_relu(y, NEG_SLOPE) if self.act else y

    @torch.no_grad()
    def copy_from(self, src: SharedMLP, out_sel: Sel, in_sel: Sel) -> None:
        """Fill this (smaller, static) layer with ``src``'s weights restricted to the selections:
        ``.copy_`` so the result shares no storage with the supernet."""
        self.weight.copy_(take(take(src.weight, out_sel, 0), in_sel, 1))
        if self.bias is not None and src.bias is not None:
            self.bias.copy_(take(src.bias, out_sel, 0))
        if self.bn is not None and src.bn is not None:
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(self.bn, name).copy_(take(getattr(src.bn, name), out_sel, 0))
            self.bn.num_batches_tracked.copy_(src.bn.num_batches_tracked)

    @torch.no_grad()
    def permute_out(self, perm: torch.Tensor, offset: int = 0) -> None:
        """Reorder output channels ``[offset, offset + len(perm))`` (producer side)."""
        permute_(self.weight, perm, start=offset)
        if self.bias is not None:
            permute_(self.bias, perm, start=offset)
        if self.bn is not None:
            permute_batch_norm_(self.bn, perm, start=offset)

    @torch.no_grad()
    def permute_in(self, perm: torch.Tensor, offset: int = 0) -> None:
        """Reorder input channels ``[offset, offset + len(perm))`` (consumer side)."""
        permute_(self.weight, perm, dim=1, start=offset)

    def importance(self, offset: int = 0, size: int | None = None) -> torch.Tensor:
        """L1 norm of each output channel's weights (scaled by |BN gamma| when there is BN)."""
        size = self.c_out - offset if size is None else size
        w = self.weight[offset : offset + size].abs().sum(1)
        if self.bn is not None:
            w = w * self.bn.weight[offset : offset + size].abs()
        return w.detach()
