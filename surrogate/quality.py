"""Predictor quality on held-out measured trials: Kendall tau (ranking) and RMSE (scale)."""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau


def prediction_quality(pairs: np.ndarray) -> dict[str, float | int | None]:
    """``pairs``: (n, 2) rows of (predicted, measured). Tau is None below 3 pairs or when either
    column is constant (undefined); RMSE is None without pairs."""
    pairs = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    n = len(pairs)
    rmse = float(np.sqrt(np.mean((pairs[:, 0] - pairs[:, 1]) ** 2))) if n else None
    tau = None
    if n >= 3 and np.ptp(pairs[:, 0]) > 0 and np.ptp(pairs[:, 1]) > 0:
        tau = float(kendalltau(pairs[:, 0], pairs[:, 1]).statistic)
    return {"kendall_tau": tau, "rmse": rmse, "n_heldout": n}
