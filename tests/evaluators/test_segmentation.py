"""Confusion-matrix mIoU, Kendall tau and validation-subset selection against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from paretonas_core.segmentation import (
    confusion_matrix,
    iou_per_class,
    kendall_tau,
    mean_iou,
    pixel_accuracy,
    random_subset,
    ranking_preserving_subset,
    stratified_subset,
    subset_kendall_tau,
)


def test_confusion_matrix_counts_and_ignores():
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    conf = confusion_matrix(pred, target, 3)
    expected = np.zeros((3, 3), dtype=np.int64)
    for t, p in zip(target.ravel(), pred.ravel(), strict=True):
        if t != 255:
            expected[t, p] += 1
    np.testing.assert_array_equal(conf, expected)
    assert conf.sum() == 5


def test_miou_closed_form():
    conf = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    # class 0: 3 / (4 + 3 - 3) = 0.75; class 1: 2 / (2 + 3 - 2) = 2/3; class 2 absent -> skipped
    np.testing.assert_allclose(iou_per_class(conf)[:2], [0.75, 2 / 3])
    assert np.isnan(iou_per_class(conf)[2])
    assert mean_iou(conf) == pytest.approx((0.75 + 2 / 3) / 2)
    assert pixel_accuracy(conf) == pytest.approx(5 / 6)
    assert mean_iou(np.zeros((3, 3))) == 0.0
    stacked = np.stack([conf, np.eye(3, dtype=int)])
    np.testing.assert_allclose(mean_iou(stacked), [mean_iou(conf), 1.0])


def test_out_of_range_labels_are_named():
    with pytest.raises(ValueError, match=r"\[7\] out of range 0..2"):
        confusion_matrix(np.zeros(3, int), np.array([0, 7, 255]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros(3, int), np.zeros(4, int), 3)


def test_kendall_tau_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 4, 9).astype(float)
        b = rng.integers(0, 4, 9).astype(float)
        ref = kendalltau(a, b).statistic
        assert kendall_tau(a, b) == pytest.approx(0.0 if np.isnan(ref) else ref)
    batch = rng.random((5, 7))
    np.testing.assert_allclose(
        kendall_tau(batch, batch[0]), [kendalltau(r, batch[0]).statistic for r in batch]
    )
    assert kendall_tau([1, 1, 1], [1, 2, 3]) == 0.0


def test_stratified_subset_keeps_rare_classes():
    rng = np.random.default_rng(1)
    presence = np.zeros((200, 5), dtype=bool)
    presence[:, 0] = True
    presence[:, 1] = rng.random(200) < 0.5
    presence[rng.choice(200, 4, replace=False), 4] = True  # a rare class: 2% of images
    for seed in range(10):
        sub = stratified_subset(presence, 50, seed=seed)
        assert len(sub) == 50 and len(set(sub)) == 50
        assert presence[sub, 4].sum() >= 1  # target 1 image; random draws miss it often
        assert abs(presence[sub, 1].mean() - presence[:, 1].mean()) < 0.1
    np.testing.assert_array_equal(stratified_subset(presence, 50, seed=3),
                                  stratified_subset(presence, 50, seed=3))
    misses = sum(presence[random_subset(200, 50, seed=s), 4].sum() == 0 for s in range(50))
    assert misses > 5  # what stratification protects against
    with pytest.raises(ValueError, match="at least 1"):
        stratified_subset(presence, 0)


def _references(rng, k=8, n=60, c=4):
    """Per-image confusion matrices of k subnets of graded quality on images of graded
    difficulty: subnet j labels a pixel correctly with probability quality_j * ease_i."""
    quality = np.linspace(0.3, 0.95, k)
    ease = rng.uniform(0.2, 1.0, n)
    conf = np.zeros((k, n, c, c), dtype=np.int64)
    for i in range(n):
        labels = rng.integers(0, c, 200)
        for j in range(k):
            noise = rng.random(200) < 1 - quality[j] * ease[i]
            pred = np.where(noise, rng.integers(0, c, 200), labels)
            conf[j, i] = confusion_matrix(pred, labels, c)
    return conf


def test_ranking_preserving_subset_matches_the_full_ranking():
    rng = np.random.default_rng(2)
    conf = _references(rng)
    sub = ranking_preserving_subset(conf, 6, seed=0)
    assert len(sub) == 6 and len(set(sub)) == 6
    assert subset_kendall_tau(conf, sub) == pytest.approx(1.0)
    assert subset_kendall_tau(conf, np.arange(conf.shape[1])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\[K, N, C, C\]"):
        ranking_preserving_subset(conf[0], 3)
