"""Uncertainty-aware batch selection on predicted losses (every column minimised).

The rule: a candidate's *optimistic* point is its predicted mean minus ``kappa`` standard
deviations. Its score is the hypervolume that point would add to the current front (exact and
vectorised for 2 objectives, Optuna's WFG for more). Candidates whose optimistic point adds
nothing are ranked by how far they are from the front (the additive epsilon they would need to
become non-dominated), so near-front candidates still come first when the front is saturated.
A batch is chosen greedily: after each pick its predicted mean joins the front as a fantasy
("kriging believer"), so the next pick goes where the first one is not expected to help.
"""

from __future__ import annotations

import numpy as np

from surrogate.pareto import hypervolume, pareto_mask


def hv_improvement_2d(points: np.ndarray, front: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Exact hypervolume improvement of each row of ``points`` (c, 2) over ``front`` (n, 2)."""
    points = np.asarray(points, dtype=np.float64)
    front = np.asarray(front, dtype=np.float64).reshape(-1, 2)
    front = front[np.all(front < reference, axis=1)]
    if len(front):
        front = front[pareto_mask(front)]
        front = front[np.argsort(front[:, 0])]
    # Staircase of the dominated region: on [x_k, x_{k+1}) the front covers heights >= h_k.
    xs = np.concatenate([[-np.inf], front[:, 0], [reference[0]]])
    hs = np.concatenate([[reference[1]], front[:, 1]])
    lo = np.maximum(xs[None, :-1], points[:, :1])
    hi = np.minimum(xs[None, 1:], reference[0])
    width = np.clip(hi - lo, 0.0, None)
    height = np.clip(hs[None, :] - points[:, 1:2], 0.0, None)
    return (width * height).sum(axis=1)


def hv_improvement(points: np.ndarray, front: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Hypervolume improvement of each point over ``front`` (any number of objectives)."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape[1] == 2:
        return hv_improvement_2d(points, front, reference)
    base = hypervolume(front, reference) if len(front) else 0.0
    out = np.zeros(len(points))
    for i, p in enumerate(points):
        if np.all(p < reference) and not _dominated(p, front):
            out[i] = hypervolume(np.vstack([front, p]), reference) - base if len(front) else (
                float(np.prod(reference - p))
            )
    return out


def _dominated(p: np.ndarray, front: np.ndarray) -> bool:
    return bool(len(front)) and bool(np.any(np.all(front <= p, axis=1)))


def epsilon_to_front(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Smallest shift subtracted from every coordinate that makes a point non-dominated.

    0 for points the front does not dominate. Vectorised: for each point, the max over front
    members of the min over objectives of (point - member).
    """
    if len(front) == 0:
        return np.zeros(len(points))
    diff = points[:, None, :] - front[None, :, :]  # (c, n, m)
    return np.clip(diff.min(axis=2).max(axis=1), 0.0, None)


def select_batch(
    mean: np.ndarray,
    std: np.ndarray,
    front: np.ndarray,
    *,
    batch_size: int,
    kappa: float,
    reference: np.ndarray | None = None,
) -> list[int]:
    """Indices of up to ``batch_size`` candidates, best first (see module docstring).

    ``mean``/``std``: (c, m) predicted losses of the candidates; ``front``: (n, m) losses of the
    measured (and pending) points, in the same units. ``reference`` defaults to the front's
    nadir pushed out by 10% of its range (so extreme points also earn volume).
    """
    mean = np.asarray(mean, dtype=np.float64)
    optimistic = mean - kappa * np.asarray(std, dtype=np.float64)
    current = np.asarray(front, dtype=np.float64).reshape(-1, mean.shape[1])
    if reference is None:
        pool = current if len(current) else optimistic
        worst, best = pool.max(axis=0), pool.min(axis=0)
        reference = worst + 0.1 * np.where(worst > best, worst - best, 1.0)
    chosen: list[int] = []
    available = np.ones(len(mean), dtype=bool)
    # Only the non-dominated part matters, and a fantasy can only change that part.
    nondominated = current[pareto_mask(current)] if len(current) else current
    for _ in range(min(batch_size, len(mean))):
        gain = hv_improvement(optimistic, nondominated, reference)
        score = np.where(gain > 0, gain, -epsilon_to_front(optimistic, nondominated))
        score[~available] = -np.inf
        best_i = int(np.argmax(score))
        chosen.append(best_i)
        available[best_i] = False
        nondominated = np.vstack([nondominated, mean[best_i]])
        nondominated = nondominated[pareto_mask(nondominated)]
    return chosen
