"""Confusion-matrix segmentation metrics (mIoU, overall accuracy).

A local helper: ``search_spaces`` may not import ``evaluators`` (imports go the other way).
"""

from __future__ import annotations

import numpy as np


def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = target class, columns = predicted class."""
    flat = target.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, -1)


def miou(conf: np.ndarray) -> float:
    """Mean IoU over the classes that occur (in target or prediction)."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return float(np.mean(tp[present] / union[present])) if present.any() else 0.0


def overall_accuracy(conf: np.ndarray) -> float:
    total = conf.sum()
    return float(np.trace(conf) / total) if total else 0.0
