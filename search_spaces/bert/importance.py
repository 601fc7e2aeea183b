"""DynaBERT-style importance of attention heads and FFN neurons, and the weight permutation that
puts the most important first so that front-slicing keeps the best ones.

Every head and every FFN neuron gets a multiplicative mask (all ones, so the function is
unchanged) and the score is a gradient with respect to that mask on a small batch of real text:

* with a labelled task: ``|dL/dm|`` accumulated over batches, L the cross-entropy of the
  classifier (Michel et al. 2019 / DynaBERT);
* without labels: the first-order Taylor estimate of how much the normalised sentence embedding
  moves when the unit is removed, ``E ||d e / d m||^2``, estimated with random projections
  (``E_v (d v.e / d m)^2 = ||d e / d m||^2`` for v ~ N(0, I)). The fidelity loss itself cannot be
  used: it is at its optimum for the full model, so its gradient is zero.

The permutation keeps each head's ``head_dim`` rows together and permutes the matching columns of
the output projections, so the full network computes exactly the same function afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from search_spaces.bert.model import BertNet
from search_spaces.elastic import permute_, strongest_first


@dataclass
class Permutation:
    """Per-layer orders (most important first) of heads and FFN neurons."""

    heads: list[list[int]]
    neurons: list[list[int]]

    def to_json(self) -> dict[str, list[list[int]]]:
        return {"heads": self.heads, "neurons": self.neurons}

    @classmethod
    def from_json(cls, raw: dict) -> Permutation:
        return cls([list(map(int, h)) for h in raw["heads"]],
                   [list(map(int, n)) for n in raw["neurons"]])

    def is_valid_for(self, net: BertNet) -> bool:
        shape = net.shape
        return (
            len(self.heads) == len(self.neurons) == shape.layers
            and all(sorted(h) == list(range(n)) for h, n in zip(self.heads, shape.heads,
                                                                  strict=True))
            and all(sorted(f) == list(range(n)) for f, n in zip(self.neurons, shape.ffn,
                                                                  strict=True))
        )


def _masks(net: BertNet) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [
        (torch.ones(h, requires_grad=True), torch.ones(f, requires_grad=True))
        for h, f in zip(net.shape.heads, net.shape.ffn, strict=True)
    ]


def importance_scores(
    net: BertNet,
    batches: list[torch.Tensor],
    *,
    labels: list[torch.Tensor] | None = None,
    projections: int = 8,
    seed: int = 0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: (head scores [heads], neuron scores [ffn]); higher = more important."""
    was_training = net.training
    net.eval()  # no dropout in this implementation, but keep the caller's mode afterwards
    masks = _masks(net)
    flat = [m for pair in masks for m in pair]
    totals = [torch.zeros_like(m) for m in flat]
    gen = torch.Generator().manual_seed(seed)
    try:
        for b, ids in enumerate(batches):
            x, mask = net.hidden_states(ids, masks=masks)
            if labels is not None:
                loss = F.cross_entropy(net.head(x, mask), labels[b], reduction="sum")
                grads = torch.autograd.grad(loss, flat)
                for t, g in zip(totals, grads, strict=True):
                    t += g.abs()
                continue
            emb = F.normalize(net.mean_pool(x, mask), dim=-1)
            for k in range(projections):
                v = torch.randn(emb.shape, generator=gen)
                grads = torch.autograd.grad((emb * v).sum(), flat,
                                            retain_graph=k < projections - 1)
                for t, g in zip(totals, grads, strict=True):
                    t += g.pow(2)
    finally:
        net.train(was_training)
    return [(totals[2 * i], totals[2 * i + 1]) for i in range(len(masks))]


def permutation_from_scores(scores: list[tuple[torch.Tensor, torch.Tensor]]) -> Permutation:
    """Descending order of each score vector (ties keep the original order)."""

    def order(s: torch.Tensor) -> list[int]:
        return strongest_first(s).tolist()

    return Permutation([order(h) for h, _ in scores], [order(n) for _, n in scores])


@torch.no_grad()
def apply_permutation(net: BertNet, perm: Permutation) -> None:
    """Reorder heads and neurons of ``net`` in place (its function is unchanged)."""
    d = net.cfg.head_dim
    for layer, heads, neurons in zip(net.layers, perm.heads, perm.neurons, strict=True):
        rows = torch.cat([torch.arange(h * d, (h + 1) * d) for h in heads])
        for lin in (layer.query, layer.key, layer.value):
            permute_(lin.weight, rows)
            permute_(lin.bias, rows)
        permute_(layer.attn_out.weight, rows, dim=1)
        idx = torch.tensor(neurons)
        permute_(layer.ffn_in.weight, idx)
        permute_(layer.ffn_in.bias, idx)
        permute_(layer.ffn_out.weight, idx, dim=1)
