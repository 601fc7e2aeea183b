"""Segmentation accuracy: confusion-matrix mIoU with an ignore index, validation-subset
selection (FMAS evaluates candidates on a subset) and Kendall tau between rankings.

Subset selection:

* ``stratified_subset``: random, stratified by class *presence* (multi-label iterative
  stratification): repeatedly take the class furthest below its target count (relative, so rare
  classes come first) and draw, among the images containing it, a random one that overshoots the
  other classes' targets least, so every class is represented in proportion.
* ``ranking_preserving_subset``: given per-image confusion matrices of a few reference subnets on
  the full validation set, grow a (stratified) seed subset greedily with the image that makes the
  subset-mIoU ranking of the references agree best (Kendall tau) with their full-set ranking.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, *, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """``[C, C]`` int64 counts, rows = ground truth, columns = prediction; ``ignore_index``
    pixels are skipped. A target value outside ``0..C-1`` (other than ignore) is an error."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    keep = target != ignore_index
    t, p = target[keep].astype(np.int64), pred[keep].astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        bad = sorted({int(v) for v in np.unique(t) if v < 0 or v >= num_classes})
        raise ValueError(
            f"target class index(es) {bad} out of range 0..{num_classes - 1} "
            f"(and {ignore_index} = ignore)"
        )
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted class index out of range 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU per class (last two axes are the confusion matrix); NaN where a class is absent from
    both ground truth and prediction."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    union = conf.sum(axis=-1) + conf.sum(axis=-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(conf: np.ndarray) -> np.ndarray | float:
    """Mean IoU over classes present in ground truth or prediction (0 when none is)."""
    iou = iou_per_class(conf)
    valid = ~np.isnan(iou)
    total = np.where(valid, iou, 0.0).sum(axis=-1)
    count = valid.sum(axis=-1)
    out = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return float(out) if np.ndim(out) == 0 else out


def pixel_accuracy(conf: np.ndarray) -> float:
    conf = np.asarray(conf, dtype=np.float64)
    total = conf.sum()
    return float(np.trace(conf) / total) if total > 0 else 0.0


def kendall_tau(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Kendall's tau-b between ``a`` and ``b`` along the last axis (vectorised over leading
    axes; equals ``scipy.stats.kendalltau``). 0 where either ranking is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    n = a.shape[-1]
    iu = np.triu_indices(n, k=1)
    da = np.sign(a[..., :, None] - a[..., None, :])[..., iu[0], iu[1]]
    db = np.sign(b[..., :, None] - b[..., None, :])[..., iu[0], iu[1]]
    s = (da * db).sum(axis=-1)
    na, nb = (da != 0).sum(axis=-1), (db != 0).sum(axis=-1)
    denom = np.sqrt(na.astype(np.float64) * nb)
    out = np.where(denom > 0, s / np.where(denom > 0, denom, 1), 0.0)
    return float(out) if np.ndim(out) == 0 else out


def _check_size(n: int, size: int) -> int:
    if size < 1:
        raise ValueError(f"subset size must be at least 1, got {size}")
    return min(size, n)


def stratified_subset(presence: np.ndarray, size: int, *, seed: int = 0) -> np.ndarray:
    """Indices of ``size`` images stratified by class presence (``presence``: ``[N, C]`` bool)."""
    presence = np.asarray(presence, dtype=bool)
    n = presence.shape[0]
    size = _check_size(n, size)
    rng = np.random.default_rng(seed)
    freq = presence.sum(axis=0)
    target = freq * size / n
    count = np.zeros(presence.shape[1])
    chosen: list[int] = []
    free = np.ones(n, dtype=bool)
    while len(chosen) < size:
        deficit = np.where(freq > 0, (target - count) / np.maximum(target, 1e-9), -np.inf)
        # ties broken at random so the result is a random stratified draw, not a fixed one
        order = np.lexsort((rng.random(len(deficit)), -deficit))
        pick = -1
        for cls in order:
            if deficit[cls] <= 0 and len(chosen) > 0:
                break
            candidates = np.flatnonzero(free & presence[:, cls])
            if candidates.size:
                over = np.clip(count + presence[candidates] - target, 0, None).sum(axis=1)
                pick = int(rng.choice(candidates[over <= over.min() + 1e-9]))
                break
        if pick < 0:  # every class met its target: fill at random
            pick = int(rng.choice(np.flatnonzero(free)))
        chosen.append(pick)
        free[pick] = False
        count += presence[pick]
    return np.sort(np.asarray(chosen, dtype=np.int64))


def random_subset(n: int, size: int, *, seed: int = 0) -> np.ndarray:
    size = _check_size(n, size)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def subset_miou(per_image_conf: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """mIoU of each reference (``per_image_conf``: ``[K, N, C, C]``) on the images ``subset``."""
    return np.asarray(mean_iou(per_image_conf[:, subset].sum(axis=1)))


def subset_kendall_tau(per_image_conf: np.ndarray, subset: np.ndarray) -> float:
    """Kendall tau between subset mIoU and full-set mIoU over the K subnets."""
    full = np.asarray(mean_iou(per_image_conf.sum(axis=1)))
    return float(kendall_tau(subset_miou(per_image_conf, subset), full))


def ranking_preserving_subset(
    per_image_conf: np.ndarray,
    size: int,
    *,
    presence: np.ndarray | None = None,
    seed: int = 0,
    seed_fraction: float = 0.5,
) -> np.ndarray:
    """Greedy subset whose mIoU ranking of K reference subnets matches the full set's.

    ``per_image_conf``: ``[K, N, C, C]`` confusion matrices of K subnets on each of N images.
    Starts from a stratified subset of ``seed_fraction * size`` images (class coverage; half
    of the subset by default, which held up better on held-out subnets than a quarter), then
    adds, one at a time, the image maximising Kendall tau (ties: the smallest mean absolute
    error of subset vs full mIoU).
    """
    conf = np.asarray(per_image_conf, dtype=np.float64)
    if conf.ndim != 4 or conf.shape[-1] != conf.shape[-2]:
        raise ValueError(f"per_image_conf must be [K, N, C, C], got shape {conf.shape}")
    n = conf.shape[1]
    size = _check_size(n, size)
    if presence is None:
        presence = conf.sum(axis=(0, 3)) > 0  # classes seen in any reference's ground truth
    n_seed = max(1, int(round(size * seed_fraction)))
    chosen = list(stratified_subset(presence, n_seed, seed=seed))
    full = np.asarray(mean_iou(conf.sum(axis=1)))  # [K]
    current = conf[:, chosen].sum(axis=1)  # [K, C, C]
    free = np.ones(n, dtype=bool)
    free[chosen] = False
    while len(chosen) < size:
        cand = np.flatnonzero(free)
        trial = current[:, None] + conf[:, cand]  # [K, M, C, C]
        miou = np.asarray(mean_iou(trial)).T  # [M, K]
        taus = np.asarray(kendall_tau(miou, full[None, :]))
        err = np.abs(miou - full[None, :]).mean(axis=1)
        best = int(np.lexsort((err, -taus))[0])
        pick = int(cand[best])
        chosen.append(pick)
        free[pick] = False
        current += conf[:, pick]
    return np.sort(np.asarray(chosen, dtype=np.int64))
