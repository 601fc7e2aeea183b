"""Pareto fronts and hypervolume for 2-4 objectives with mixed directions.

Everything works on a *loss matrix* (Optuna's convention): maximised objectives are negated so
that every column is minimised. The hypervolume is exact: a sweep in two dimensions, slicing
along the last objective above that (fronts here are tens to hundreds of points).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def loss_signs(directions: Sequence[str]) -> np.ndarray:
    """Per objective: -1 where it is maximised, +1 where minimised (values * signs = losses;
    a loss-space point * signs = the point in objective units)."""
    return np.array([-1.0 if str(getattr(d, "name", d)).lower() == "maximize" else 1.0
                     for d in directions])


def to_loss(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """(n, m) objective values -> (n, m) losses (maximised columns negated)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1, len(directions))
    return values * loss_signs(directions)


def pareto_mask(loss: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Boolean mask of the non-dominated rows of a loss matrix (duplicates all kept).

    Vectorised pairwise comparison, ``chunk`` rows at a time so that memory stays at 2 x chunk
    x n booleans (the surrogate calls this every round, the benchmark on whole tables).
    """
    loss = np.asarray(loss, dtype=np.float64)
    n = len(loss)
    mask = np.ones(n, dtype=bool)
    cols = loss.T
    for lo in range(0, n, chunk):
        rows = loss[lo : lo + chunk]
        # (c, n): does row k of the whole matrix weakly beat chunk row i everywhere / strictly
        # somewhere; one objective at a time keeps the arrays 2-D (much faster than an m axis).
        no_worse = np.ones((len(rows), n), dtype=bool)
        better = np.zeros((len(rows), n), dtype=bool)
        for j, col in enumerate(cols):
            no_worse &= col[None, :] <= rows[:, j : j + 1]
            better |= col[None, :] < rows[:, j : j + 1]
        mask[lo : lo + chunk] = ~(no_worse & better).any(axis=1)
    return mask


def hypervolume(loss: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume dominated by ``loss`` rows and bounded by ``reference`` (a loss vector)."""
    loss = np.asarray(loss, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if len(loss) == 0:
        return 0.0
    inside = loss[np.all(loss < reference, axis=1)]
    if len(inside) == 0:
        return 0.0
    front = np.unique(inside[pareto_mask(inside)], axis=0)
    return float(_dominated_volume(front, reference))


def _dominated_volume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``points`` (all strictly better than ``reference``; dominated points
    allowed) inside the box bounded by ``reference``."""
    n, m = points.shape
    if m == 1:
        return float(reference[0] - points[:, 0].min())
    if m == 2:  # sweep along the first objective; the height is the best second value so far
        order = np.argsort(points[:, 0], kind="stable")
        x, y = points[order, 0], np.minimum.accumulate(points[order, 1])
        widths = np.diff(np.append(x, reference[0]))
        return float(np.sum(widths * (reference[1] - y)))
    # slice along the last objective: between consecutive values the dominated region is the
    # (m-1)-dimensional volume of the points at or below the slice, times its depth
    order = np.argsort(points[:, -1], kind="stable")
    pts = points[order]
    upper = np.append(pts[1:, -1], reference[-1])
    total = 0.0
    for i in range(n):
        depth = upper[i] - pts[i, -1]
        if depth > 0:
            total += depth * _dominated_volume(pts[: i + 1, :-1], reference[:-1])
    return total


def default_reference(loss: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """The nadir of ``loss`` pushed out by ``margin`` of each column's range."""
    loss = np.asarray(loss, dtype=np.float64)
    worst, best = loss.max(axis=0), loss.min(axis=0)
    span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
    return worst + margin * span


def crowding_distance(loss: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row of a (front's) loss matrix: per objective, the
    normalised gap between a row's two neighbours, summed; the extremes get infinity."""
    loss = np.asarray(loss, dtype=np.float64)
    n, m = loss.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(loss[:, j], kind="stable")
        col = loss[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist
