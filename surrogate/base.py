"""The ``Predictor`` contract: fit on encoded archs, predict a mean and a standard deviation.

Every predictor validates its inputs the same way (``check_xy``/``check_x``) so that a bad matrix
is a ``PredictorError`` naming the problem, never a numpy/torch traceback.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict


class PredictorError(ValueError):
    """Bad input to a predictor (shape, non-finite values, unfitted model, unreadable file)."""


class PredictorOptions(BaseModel):
    """Base of every predictor's options: unknown options are errors."""

    model_config = ConfigDict(extra="forbid")


class Predictor(ABC):
    """Regressor on arch encodings with an uncertainty estimate.

    Subclasses set ``name`` and ``Options``; ``fit`` replaces any previous fit. ``std`` must grow
    away from the training data (the surrogate strategy's exploration depends on it).
    """

    name: ClassVar[str]
    Options: ClassVar[type[PredictorOptions]] = PredictorOptions

    def __init__(self, options: PredictorOptions | dict[str, Any] | None = None, **kwargs: Any):
        if not isinstance(options, PredictorOptions):
            options = self.Options.model_validate({**dict(options or {}), **kwargs})
        self.options = options
        self.n_features: int | None = None

    @property
    def fitted(self) -> bool:
        return self.n_features is not None

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on features ``X`` (n, d) and targets ``y`` (n,)."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (mean, std), each of shape (n,)."""

    @abstractmethod
    def save(self, path: str | Path) -> None:
        """Write the fitted model to one file (no pickle: loading must be safe)."""

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path) -> Predictor:
        """Read a file written by ``save``."""

    # --- shared input checks ----------------------------------------------------------------
    def check_xy(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X = _as_matrix(X)
        try:
            y = np.asarray(y, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise PredictorError(f"y must be numeric: {exc}") from exc
        if len(y) != len(X):
            raise PredictorError(f"X has {len(X)} rows but y has {len(y)} values")
        if len(y) < 2:
            raise PredictorError(f"need at least 2 training points, got {len(y)}")
        if not np.all(np.isfinite(y)):
            raise PredictorError("y contains NaN or infinite values")
        return X, y

    def check_x(self, X: Any) -> np.ndarray:
        if not self.fitted:
            raise PredictorError(f"{self.name}: predict() called before fit()")
        X = _as_matrix(X)
        if X.shape[1] != self.n_features:
            raise PredictorError(
                f"X has {X.shape[1]} features; this predictor was fitted on {self.n_features}"
            )
        return X


def _as_matrix(X: Any) -> np.ndarray:
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PredictorError(f"X must be a numeric matrix: {exc}") from exc
    if X.ndim != 2 or X.shape[1] == 0:
        raise PredictorError(f"X must have shape (n, d) with d >= 1, got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise PredictorError("X contains NaN or infinite values")
    return X


def read_file_error(path: str | Path, exc: Exception) -> PredictorError:
    """Uniform message for a predictor file that cannot be read."""
    return PredictorError(f"cannot load predictor from {Path(path).name}: {exc}")
