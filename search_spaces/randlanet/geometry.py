"""What RandLA-Net computes from the points alone: neighbour indices and position encodings.

In RandLA-Net every layer works on the first ``n_i`` points of a randomly ordered cloud, so the
``k`` nearest neighbours of each point at a level, the nearest point of the next level (for
up-sampling) and the 10-d relative position encoding depend only on the points, the number of
points kept at each level and ``k``: not on any width or weight. The reference implementation
computes them in its data pipeline for that reason. ``PointGeometry`` holds them for one cloud,
computed on first use and kept, so that many subnetworks evaluated on the same sampled cloud
(the same sampling parameters: what a two-stage search's second stage fixes, SSS3D) search
neighbours once.

A model run without a geometry builds a throw-away one (nothing is kept between calls). While
the model is traced (ONNX export) nothing is kept either: a kept result would be baked into the
graph as a constant and the neighbour search's cost would vanish from the measured latency.
"""

from __future__ import annotations

import time

import torch

from search_spaces.randlanet.neighbors import gather_neighbours, knn


def relative_position(xyz: torch.Tensor, neigh: torch.Tensor) -> torch.Tensor:
    """RandLA-Net's 10-d position encoding: [|p_i - p_k|, p_i - p_k, p_i, p_k]."""
    nb = gather_neighbours(xyz, neigh)  # (B, N, k, 3)
    centre = xyz.unsqueeze(2).expand_as(nb)
    rel = centre - nb
    dist = torch.sqrt((rel * rel).sum(-1, keepdim=True) + 1e-12)
    return torch.cat([dist, rel, centre, nb], dim=-1)


class PointGeometry:
    """Neighbourhoods of one (batch of) randomly ordered cloud(s) ``xyz`` (B, N, 3), by level
    size: ``neighbours(n, k)`` are the k nearest of the first n points among themselves,
    ``upsampling(n, m)`` the nearest of the first m points for each of the first n."""

    def __init__(self, xyz: torch.Tensor, *, backend: str = "kdtree", keep: bool = True):
        self.xyz = xyz.contiguous()
        self.backend = backend
        self.keep = keep
        self._found: dict[tuple, torch.Tensor] = {}
        self.seconds: dict[tuple, float] = {}  # what computing each kept entry took

    def _get(self, key: tuple, compute) -> torch.Tensor:
        tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if not self.keep or tracing:
            return compute()
        if key not in self._found:
            started = time.perf_counter()
            self._found[key] = compute()
            self.seconds[key] = time.perf_counter() - started
        return self._found[key]

    def points(self, n: int) -> torch.Tensor:
        return self.xyz[:, :n]

    def neighbours(self, n: int, k: int) -> torch.Tensor:
        """(B, n, k) indices into the first n points, nearest first."""
        return self._get(("knn", n, k), lambda: knn(self.points(n), self.points(n), k,
                                                     backend=self.backend))

    def upsampling(self, n: int, m: int) -> torch.Tensor:
        """(B, n, 1) index of the nearest of the first m points for each of the first n."""
        return self._get(("up", n, m), lambda: knn(self.points(n), self.points(m), 1,
                                                    backend=self.backend))

    def position_encoding(self, n: int, k: int) -> torch.Tensor:
        """(B, n, k, 10) relative position encoding of ``neighbours(n, k)``."""
        return self._get(("pos", n, k), lambda: relative_position(
            self.points(n), self.neighbours(n, k)))

    @property
    def entries(self) -> int:
        return len(self._found)
