"""Hypervolume that compares across studies: each objective scaled to [0, 1] by a box that
belongs to the *problem* (the space and the objectives), not to one study's early trials.

The box per objective is [best, worst]:
- a table space: the objective's exact range over the table's rows;
- a supernet: for cost metrics the range between its smallest and largest arch; for accuracy
  metrics (fractions: accuracy, IoU) [0, 1];
- the objective's ``reference``, when the user fixes one, replaces ``worst``;
- a minimised metric with no known best (a device latency) has best 0.
An objective whose worst stays unknown (a latency without ``reference``) leaves the study without
a problem reference; its own per-study hypervolume (``best_hypervolume``) is still there.
Normalised losses are clipped to [0, 1] and measured against the point (1, ..., 1), so the
value lies in [0, 1]: 1 would be a single arch at the best of every objective at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from service.engine.checks import metric_samples
from service.engine.resolve import ResolvedStudy
from surrogate.pareto import hypervolume, to_loss


def problem_reference(study: ResolvedStudy) -> dict[str, Any]:
    """``{"best", "worst", "basis"}`` in objective units, or ``{"missing", "message"}``."""
    samples, what = metric_samples(study)
    best_all, worst_all, basis, missing = [], [], [], []
    for i, o in enumerate(study.spec.objectives):
        values = [r[o.key] for r in samples if o.key in r]
        src = study.sources.get(o.key)
        best = worst = None
        how = what
        if values:
            lo, hi = min(values), max(values)
            best, worst = (lo, hi) if o.direction == "minimize" else (hi, lo)
        elif src is not None and src.kind == "accuracy" and study.space.has_models:
            best, worst = (0.0, 1.0) if o.direction == "minimize" else (1.0, 0.0)
            how = "fraction"
        if o.reference is not None:
            worst, how = o.reference, f"{how}, reference" if how else "reference"
        if best is None and o.direction == "minimize" and worst is not None:
            best = 0.0
        if best is None or worst is None:
            missing.append(f"objectives.{i} ({o.key})")
        best_all.append(best)
        worst_all.append(worst)
        basis.append(how)
    if missing:
        return {"missing": missing, "message": "no problem reference for "
                + ", ".join(missing) + ": set each one's 'reference' (its worst value) to "
                "compare this study's hypervolume with others'"}
    return {"best": best_all, "worst": worst_all, "basis": basis}


class Normaliser:
    """Objective values -> losses in [0, 1] under one problem reference."""

    def __init__(self, reference: dict[str, Any], directions: Sequence[str]):
        self.directions = list(directions)
        best = to_loss(np.array([reference["best"]], dtype=float), self.directions)[0]
        worst = to_loss(np.array([reference["worst"]], dtype=float), self.directions)[0]
        self.offset = best
        span = worst - best
        self.span = np.where(span > 0, span, 1.0)  # a constant objective: every value at 0

    def losses(self, values: np.ndarray) -> np.ndarray:
        loss = to_loss(values, self.directions)
        return np.clip((loss - self.offset) / self.span, 0.0, 1.0)

    def hypervolume(self, values: np.ndarray) -> float:
        if len(values) == 0:
            return 0.0
        return hypervolume(self.losses(values), np.ones(len(self.directions)))


def usable(reference: dict[str, Any] | None) -> bool:
    return bool(reference) and "best" in reference


def front_hypervolume(reference: dict[str, Any] | None, directions: Sequence[str],
                      front_values: Sequence[Sequence[float]]) -> float | None:
    """Normalised hypervolume of a front (rows of objective values); None without a reference
    or without a front."""
    if not usable(reference) or not front_values:
        return None
    return Normaliser(reference, directions).hypervolume(np.asarray(front_values, dtype=float))


def history(reference: dict[str, Any], directions: Sequence[str],
            feasible: Iterable[tuple[int, Sequence[float]]]) -> list[tuple[int, float]]:
    """Normalised hypervolume after each feasible trial that changed the front, in trial order
    (``feasible``: (number, objective values) of the trials the front is made of)."""
    norm = Normaliser(reference, directions)
    front = np.empty((0, len(directions)))
    out: list[tuple[int, float]] = []
    for number, values in feasible:
        loss = norm.losses(np.asarray([values], dtype=float))
        if len(front) and np.any(np.all(front <= loss, axis=1)):
            continue  # dominated or equal: the front and its hypervolume stay
        front = np.vstack([front[~np.all(loss <= front, axis=1)], loss])
        out.append((number, hypervolume(front, np.ones(len(directions)))))
    return out
