"""What every weight-sharing supernet does to its full-size weights, in one place.

* A *selection* (``Sel``) names the active channels of a full-size dimension: an ``int`` n means
  the first n (a view, so BatchNorm running statistics still update in place while training), a
  ``LongTensor`` lists indices (where a tensor is the concatenation of two elastic parts), and
  ``None`` means all. ``take`` applies one.
* ``sliced_batch_norm`` normalises over the selected channels of a full-size BatchNorm, updating
  the slice's running statistics with the same rule as ``nn.BatchNorm*``.
* Importance reordering (so that "first k" keeps the strongest k): ``strongest_first`` /
  ``importance_order`` give a stable descending order (a second reorder is the identity), and
  ``permute_`` / ``permute_batch_norm_`` move a span of channels in place; a supernet permutes a
  producer's outputs and every consumer's inputs with the same order, so the largest network
  computes the same function.

DeepLabV3+ (``deeplabv3plus/ops.py``), RandLA-Net (``randlanet/elastic.py``) and BERT
(``bert/importance.py``) build their elastic layers on these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Sel = int | Tensor | None
BatchNorm = nn.BatchNorm1d | nn.BatchNorm2d


def take(t: Tensor, sel: Sel, dim: int) -> Tensor:
    """``t`` restricted to ``sel`` along ``dim``."""
    if sel is None:
        return t
    if isinstance(sel, int):
        return t.narrow(dim, 0, sel)
    return t.index_select(dim, sel.to(t.device))  # selections are built on the CPU


def sliced_batch_norm(x: Tensor, bn: BatchNorm, sel: Sel) -> Tensor:
    """``bn`` applied to ``x`` (channels on dim 1) using only the selected channels' parameters
    and running statistics; in training those statistics update in place, and
    ``num_batches_tracked`` counts the batch, as ``nn.BatchNorm*`` does (``momentum=None`` is
    the cumulative average)."""
    factor = 0.0
    if bn.training:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    return F.batch_norm(x, take(bn.running_mean, sel, 0), take(bn.running_var, sel, 0),
                        take(bn.weight, sel, 0), take(bn.bias, sel, 0),
                        bn.training, factor, bn.eps)


def strongest_first(scores: Tensor) -> Tensor:
    """Indices of ``scores`` from largest to smallest; ties keep their order (stable)."""
    return torch.argsort(scores.detach(), descending=True, stable=True)


def importance_order(weight: Tensor, *, dim: int) -> Tensor:
    """Channels along ``dim`` ordered by the L1 norm of ``weight`` over all other dims."""
    dims = [d for d in range(weight.dim()) if d != dim]
    return strongest_first(weight.detach().abs().sum(dim=dims))


@torch.no_grad()
def permute_(t: Tensor, order: Tensor, *, dim: int = 0, start: int = 0) -> None:
    """Reorder ``t`` in place along ``dim`` within ``[start, start + len(order))``:
    position ``start + i`` receives what was at ``start + order[i]``."""
    part = t.narrow(dim, start, order.numel())
    part.copy_(part.index_select(dim, order.to(t.device)))


@torch.no_grad()
def permute_batch_norm_(bn: BatchNorm, order: Tensor, *,
                        start: int = 0) -> None:
    """Reorder a BatchNorm's channels (affine parameters and running statistics) in place."""
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        permute_(t, order, start=start)
