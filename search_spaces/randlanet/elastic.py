"""Elastic shared MLP (Once-for-All style): one full-size weight, sliced per active subnet.

A *selection* (``Sel``) names which channels of a full-size dimension are active: an ``int`` n
means the first n (a view, so BatchNorm running statistics still update in place while training),
a ``LongTensor`` lists indices (used where a tensor is the concatenation of two elastic halves,
e.g. RandLA-Net's [neighbour features, relative-position encoding]). ``None`` means all.

The same class is the static layer of an extracted subnet: with every selection ``None`` the
forward uses the weights as they are, with no slicing overhead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Sel = int | torch.Tensor | None

#: RandLA-Net's activation (LeakyReLU with slope 0.2, as in the reference implementation).
NEG_SLOPE = 0.2


def take(t: torch.Tensor, sel: Sel, dim: int) -> torch.Tensor:
    """``t`` restricted to ``sel`` along ``dim``."""
    if sel is None:
        return t
    if isinstance(sel, int):
        return t.narrow(dim, 0, sel)
    return t.index_select(dim, sel.to(t.device))  # selections are built on the CPU


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
            bn = self.bn
            momentum = bn.momentum
            if momentum is None and bn.training:  # cumulative average, as nn.BatchNorm does
                bn.num_batches_tracked.add_(1)
                momentum = 1.0 / float(bn.num_batches_tracked)
            shape = y.shape
            flat = y.reshape(-1, shape[-1])
            flat = F.batch_norm(
                flat,
                take(bn.running_mean, out_sel, 0),
                take(bn.running_var, out_sel, 0),
                take(bn.weight, out_sel, 0),
                take(bn.bias, out_sel, 0),
                bn.training,
                momentum if momentum is not None else 0.0,
                bn.eps,
            )
            y = flat.reshape(shape)
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
        span = slice(offset, offset + len(perm))
        idx = perm + offset
        self.weight[span] = self.weight[idx].clone()
        if self.bias is not None:
            self.bias[span] = self.bias[idx].clone()
        if self.bn is not None:
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(self.bn, name)
                t[span] = t[idx].clone()

    @torch.no_grad()
    def permute_in(self, perm: torch.Tensor, offset: int = 0) -> None:
        """Reorder input channels ``[offset, offset + len(perm))`` (consumer side)."""
        span = slice(offset, offset + len(perm))
        self.weight[:, span] = self.weight[:, perm + offset].clone()

    def importance(self, offset: int = 0, size: int | None = None) -> torch.Tensor:
        """L1 norm of each output channel's weights (scaled by |BN gamma| when there is BN)."""
        size = self.c_out - offset if size is None else size
        w = self.weight[offset : offset + size].abs().sum(1)
        if self.bn is not None:
            w = w * self.bn.weight[offset : offset + size].abs()
        return w.detach()
