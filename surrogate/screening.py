"""Accuracy screening for the ``surrogate`` and ``hybrid`` accuracy modes of a study.

Measuring accuracy is the expensive part of a trial (a validation pass); costs and latency are
cheap by comparison. After ``initial`` measured trials, a predictor per accuracy objective
estimates a candidate's accuracy; with its cheap objectives computed, the candidate is measured
only if its *optimistic* point (predicted mean + ``kappa`` std, in the good direction) is not
dominated by the measured front, i.e. only if it may improve the front. The others keep their
predicted accuracy. ``hybrid`` also measures a random ``audit_fraction`` of the screened-out
candidates, which keeps the predictor honest where it is pessimistic and makes the held-out
quality figures unbiased.

Quality is prospective: every measured trial is first predicted by the current models (fitted
without it), then added to the training data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from surrogate import PREDICTORS
from surrogate.base import Predictor
from surrogate.pareto import loss_signs
from surrogate.quality import prediction_quality

Mode = Literal["measured", "surrogate", "hybrid"]


@dataclass
class Decision:
    measure: bool
    predicted: dict[str, tuple[float, float]]  # accuracy key -> (mean, std); empty: no model yet
    reason: str


class AccuracyScreen:
    """Decides per candidate whether its accuracy objectives must be measured."""

    def __init__(
        self,
        *,
        mode: Mode,
        objectives: Sequence[tuple[str, str]],
        accuracy_keys: Sequence[str],
        predictor: str = "gp",
        predictor_options: dict[str, Any] | None = None,
        initial: int = 10,
        kappa: float = 1.0,
        audit_fraction: float = 0.2,
        refit_every: int = 5,
        quality_window: int = 100,
        seed: int = 0,
    ):
        self.mode = mode
        self.keys = [k for k, _ in objectives]
        self.signs = loss_signs([d for _, d in objectives])
        self.accuracy_keys = [k for k in self.keys if k in set(accuracy_keys)]
        self.predictor_cls = PREDICTORS.get(predictor)
        self.predictor_options = dict(predictor_options or {})
        self.predictor_cls(self.predictor_options)  # validate now
        self.initial, self.kappa = initial, kappa
        self.audit_fraction = audit_fraction if mode == "hybrid" else 0.0
        self.refit_every = refit_every
        self._rng = np.random.default_rng(seed)
        self._X: list[np.ndarray] = []
        self._y: list[list[float]] = []  # accuracy values, in accuracy_keys order
        self._losses: list[np.ndarray] = []  # measured loss vectors (every objective)
        self._models: list[Predictor] | None = None
        self._fitted_n = 0
        self._pairs = {k: deque(maxlen=quality_window) for k in self.accuracy_keys}

    @property
    def active(self) -> bool:
        return self.mode != "measured" and bool(self.accuracy_keys)

    def observe(self, x: np.ndarray, values: dict[str, float]) -> None:
        """Record a trial whose accuracy was measured (score it first: it is held out)."""
        x = np.asarray(x, dtype=np.float64)
        if self._models is not None:
            for key, model in zip(self.accuracy_keys, self._models, strict=True):
                mean, _ = model.predict(x[None, :])
                self._pairs[key].append((float(mean[0]), float(values[key])))
        self._X.append(x)
        self._y.append([float(values[k]) for k in self.accuracy_keys])
        self._losses.append(np.array([values[k] for k in self.keys]) * self.signs)

    def decide(self, x: np.ndarray, cheap: dict[str, float]) -> Decision:
        """``cheap``: the candidate's other objective values, already computed."""
        if not self.active:
            return Decision(True, {}, "measured mode")
        if len(self._y) < self.initial:
            return Decision(True, {}, f"initial sample ({len(self._y) + 1}/{self.initial})")
        self._refit()
        assert self._models is not None
        predicted = {}
        for key, model in zip(self.accuracy_keys, self._models, strict=True):
            mean, std = model.predict(np.asarray(x, dtype=np.float64)[None, :])
            predicted[key] = (float(mean[0]), float(std[0]))
        optimistic = []
        for key, sign in zip(self.keys, self.signs, strict=True):
            if key in predicted:
                mean, std = predicted[key]
                optimistic.append(sign * mean - self.kappa * std)
            else:
                optimistic.append(sign * cheap[key])
        point = np.array(optimistic)
        front = np.array(self._losses)
        dominated = bool(np.any(np.all(front <= point, axis=1) & np.any(front < point, axis=1)))
        if not dominated:
            return Decision(True, predicted, "may improve the front")
        if self.audit_fraction and self._rng.random() < self.audit_fraction:
            return Decision(True, predicted, "audit (hybrid mode)")
        return Decision(False, predicted, "dominated even optimistically")

    def _refit(self) -> None:
        if self._models is not None and len(self._y) - self._fitted_n < self.refit_every:
            return
        X, Y = np.vstack(self._X), np.array(self._y)
        models = self._models or [
            self.predictor_cls(self.predictor_options) for _ in self.accuracy_keys
        ]
        for j, model in enumerate(models):
            model.fit(X, Y[:, j])
        self._models, self._fitted_n = models, len(self._y)

    def quality(self) -> dict[str, dict[str, float | int | None]]:
        """Per accuracy objective: Kendall tau and RMSE on held-out measured trials."""
        return {k: prediction_quality(np.array(p).reshape(-1, 2)) for k, p in self._pairs.items()}
