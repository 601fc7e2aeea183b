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

from collections.abc import Callable

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
    """Hypervolume improvement of each point over ``front`` (any number of objectives).

    For 3+ objectives, per point p: the volume of p's box [p, reference] minus the hypervolume
    of the front clipped into that box (each member replaced by max(member, p), then only the
    non-dominated ones). Exact, and the clipped front is small, so this is several times
    faster than hypervolume(front + p) - hypervolume(front) with WFG on the whole front."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape[1] == 2:
        return hv_improvement_2d(points, front, reference)
    front = np.asarray(front, dtype=np.float64).reshape(-1, points.shape[1])
    front = front[np.all(front < reference, axis=1)]
    if len(front):
        front = front[pareto_mask(front)]
    out = np.zeros(len(points))
    inside = np.all(points < reference, axis=1)
    if len(front):  # a point some member weakly dominates adds nothing
        inside &= ~np.any(np.all(front[None, :, :] <= points[:, None, :], axis=2), axis=1)
    for i in np.flatnonzero(inside):
        p = points[i]
        box = float(np.prod(reference - p))
        if not len(front):
            out[i] = box
            continue
        # hypervolume() keeps only the clipped front's non-dominated points itself
        out[i] = max(box - hypervolume(np.maximum(front, p), reference), 0.0)
    return out


def epsilon_to_front(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Smallest shift subtracted from every coordinate that makes a point non-dominated.

    0 for points the front does not dominate. Vectorised: for each point, the max over front
    members of the min over objectives of (point - member).
    """
    if len(front) == 0:
        return np.zeros(len(points))
    diff = points[:, None, :] - front[None, :, :]  # (c, n, m)
    return np.clip(diff.min(axis=2).max(axis=1), 0.0, None)


def front_reference(losses: np.ndarray, *, margin: float = 0.1, fence: float = 3.0) -> np.ndarray:
    """A hypervolume reference that moves with the measured front: the nadir of the front of
    ``losses`` (n, m), pushed out by ``margin`` x the front's range on each objective.

    Archs beyond Tukey's far-out fence on some objective (worse than Q3 + ``fence`` x IQR of
    all ``losses``, e.g. chance-level accuracy) are left out first: the fastest arch of a space
    is often such an outlier, and a nadir at its accuracy would credit the whole cheap corner.
    Unlike the median measured arch, this reference keeps crediting archs slower (or less
    accurate) than a typical one as long as the front itself reaches there.
    """
    losses = np.asarray(losses, dtype=np.float64)
    q1, q3 = np.quantile(losses, [0.25, 0.75], axis=0)
    inside = np.all(losses <= q3 + fence * (q3 - q1), axis=1)
    kept = losses[inside] if inside.any() else losses
    front = kept[pareto_mask(kept)]
    worst, best = front.max(axis=0), front.min(axis=0)
    # A one-point (or flat) front has no range: fall back to the spread of all archs.
    spread = np.where(worst > best, worst - best, np.where(q3 > q1, q3 - q1, 1.0))
    return worst + margin * spread


def front_segments(points: np.ndarray, front: np.ndarray, k: int) -> np.ndarray:
    """Which of ``k`` parts of ``front`` each point is nearest to: the front sorted along its
    first objective and cut into ``k`` runs of (nearly) equal length; a point belongs to the
    run of its nearest front member (Euclidean, each objective scaled by the front's range)."""
    if len(front) == 0:
        return np.zeros(len(points), dtype=int)
    order = np.argsort(front[:, 0], kind="stable")
    run = np.empty(len(front), dtype=int)
    run[order] = np.arange(len(front)) * min(k, len(front)) // len(front)
    span = front.max(axis=0) - front.min(axis=0)
    scale = np.where(span > 0, span, 1.0)
    dist = (((points[:, None, :] - front[None, :, :]) / scale) ** 2).sum(axis=2)
    return run[np.argmin(dist, axis=1)]


def _pickable(available: np.ndarray, earns: np.ndarray) -> np.ndarray:
    """The candidates a pick may take: the available ones likely enough to be feasible, or
    every available one when none is (``min_feasibility`` of ``select_batch``)."""
    likely = available & earns
    return likely if likely.any() else available


def select_batch(
    mean: np.ndarray,
    std: np.ndarray,
    front: np.ndarray,
    *,
    batch_size: int,
    kappa: float,
    reference: np.ndarray | None = None,
    to_units: Callable[[np.ndarray], np.ndarray] | None = None,
    spread: bool = False,
    feasibility: np.ndarray | None = None,
    min_feasibility: float = 0.0,
) -> list[int]:
    """Indices of up to ``batch_size`` candidates, best first (see module docstring).

    ``mean``/``std``: (c, m) predicted losses of the candidates; ``front``: (n, m) losses of the
    measured (and pending) points, in the same units. ``reference`` defaults to the worst of
    those points on each objective pushed out by 10% of their range (so extreme points also
    earn volume).
    ``to_units``: a column-wise increasing map from the predictors' scale (e.g. log latency)
    to the units the hypervolume is measured in (applied to the optimistic points, the means
    and ``front``; ``reference`` is given in those units).
    ``spread``: after the first pick, each pick is the best candidate near a part of the front
    that no earlier pick of the batch is near (see ``front_segments``), so that one batch
    explores along the whole front rather than around its most promising point.
    ``feasibility``: (c,) predicted probability that each candidate satisfies the study's
    constraints. As in constrained EHVI the improvement is weighted by it (and the distance of
    a candidate that adds nothing divided by it); a pick joins the front as a fantasy only when
    it is more likely feasible than not. ``front`` must then hold feasible points only.
    ``min_feasibility``: a candidate predicted feasible with a lower probability is picked
    only when no available candidate reaches it (0, the default: any candidate). Without it,
    once the feasible front is found, a likely infeasible candidate's optimistic gain x its
    small probability still beats the feasible candidates, which add nothing.
    """
    mean = np.asarray(mean, dtype=np.float64)
    optimistic = mean - kappa * np.asarray(std, dtype=np.float64)
    current = np.asarray(front, dtype=np.float64).reshape(-1, mean.shape[1])
    if to_units is not None:
        mean, optimistic = to_units(mean), to_units(optimistic)
        current = to_units(current) if len(current) else current
    if reference is None:
        pool = current if len(current) else optimistic
        worst, best = pool.max(axis=0), pool.min(axis=0)
        reference = worst + 0.1 * np.where(worst > best, worst - best, 1.0)
    pf = (np.ones(len(mean)) if feasibility is None
          else np.clip(np.asarray(feasibility, dtype=np.float64), 1e-6, 1.0))
    earns = pf >= min_feasibility
    chosen: list[int] = []
    available = np.ones(len(mean), dtype=bool)
    # Only the non-dominated part matters, and a fantasy can only change that part.
    nondominated = current[pareto_mask(current)] if len(current) else current
    segment = (front_segments(optimistic, nondominated, batch_size) if spread
               else np.zeros(len(mean), dtype=int))
    covered: set[int] = set()
    # 3+ objectives: lazy greedy (below) computes the exact gain of few candidates per pick.
    lazy = (LazyGains(optimistic, np.where(earns, pf, 0.0), reference)
            if mean.shape[1] > 2 and not spread else None)
    for _ in range(min(batch_size, len(mean))):
        if lazy is not None:
            best_i = lazy.best(nondominated, available)
            if best_i is None:  # nothing adds volume: the nearest to the front
                score = -epsilon_to_front(optimistic, nondominated) / pf
                score[~_pickable(available, earns)] = -np.inf
                best_i = int(np.argmax(score))
            chosen.append(best_i)
            available[best_i] = False
            if pf[best_i] >= 0.5:  # as below: only a likely feasible pick is a fantasy
                nondominated = np.vstack([nondominated, mean[best_i]])
                nondominated = nondominated[pareto_mask(nondominated)]
                lazy.front_grew()
            continue
        gain = hv_improvement(optimistic, nondominated, reference)
        score = np.where((gain > 0) & earns, gain * pf,
                         -epsilon_to_front(optimistic, nondominated) / pf)
        score[~_pickable(available, earns)] = -np.inf
        fresh = available & ~np.isin(segment, list(covered))
        if spread and covered and fresh.any():
            score[~fresh] = -np.inf
        best_i = int(np.argmax(score))
        covered.add(int(segment[best_i]))
        chosen.append(best_i)
        available[best_i] = False
        if pf[best_i] < 0.5:  # likely infeasible: would not join the (feasible) front
            continue
        nondominated = np.vstack([nondominated, mean[best_i]])
        nondominated = nondominated[pareto_mask(nondominated)]
    return chosen


class LazyGains:
    """Greedy hypervolume-improvement picks without scoring every candidate every time.

    A point's improvement only shrinks as the front grows, and never exceeds the volume of its
    box [point, reference]: both are upper bounds. Each pick scores exactly (``hv_improvement``)
    the candidates in order of their bound until the best exact score reached is at least the
    next bound, the same pick as scoring all of them (lazy greedy, as for any submodular
    gain). With 3-4 objectives and ~2,000 candidates this makes a round several times cheaper.
    """

    def __init__(self, points: np.ndarray, weight: np.ndarray, reference: np.ndarray):
        self.points, self.weight, self.reference = points, weight, reference
        inside = np.all(points < reference, axis=1)
        box = np.prod(np.clip(reference - points, 0.0, None), axis=1)
        self.bound = np.where(inside, box * weight, 0.0)
        self.exact = np.zeros(len(points), dtype=bool)

    def front_grew(self) -> None:
        self.exact[:] = False  # the scores stay upper bounds

    def best(self, front: np.ndarray, available: np.ndarray) -> int | None:
        """The available candidate of largest weighted improvement; None if none adds any."""
        order = np.flatnonzero(available & (self.bound > 0))
        order = order[np.argsort(-self.bound[order], kind="stable")]
        best_i, best = None, 0.0
        for i in order:
            if self.bound[i] <= best:
                break
            if not self.exact[i]:
                gain = hv_improvement(self.points[i : i + 1], front, self.reference)[0]
                self.bound[i] = gain * self.weight[i]
                self.exact[i] = True
            if self.bound[i] > best:
                best_i, best = int(i), float(self.bound[i])
        return best_i
