"""Pareto mask and hypervolume against brute force and closed forms."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from surrogate.pareto import (
    crowding_distance,
    default_reference,
    hypervolume,
    pareto_mask,
    to_loss,
)


def brute_force_mask(loss: np.ndarray) -> np.ndarray:
    n = len(loss)
    return np.array([
        not any(np.all(loss[j] <= loss[i]) and np.any(loss[j] < loss[i]) for j in range(n))
        for i in range(n)
    ], dtype=bool)


def brute_force_hv(loss: np.ndarray, ref: np.ndarray, grid: int = 1) -> float:
    """Exact HV on integer points by summing unit cells of the dominated region."""
    lo = np.floor(loss.min(axis=0)).astype(int)
    hi = ref.astype(int)
    total = 0
    for cell in itertools.product(*(range(a, b) for a, b in zip(lo, hi, strict=True))):
        corner = np.array(cell, dtype=float)
        if np.any(np.all(loss <= corner, axis=1)):
            total += 1
    return float(total)


losses = st.integers(2, 4).flatmap(
    lambda m: arrays(np.float64, st.tuples(st.integers(1, 12), st.just(m)),
                     elements=st.integers(0, 6).map(float))
)


@settings(max_examples=60, deadline=None)
@given(losses)
def test_pareto_mask_matches_brute_force(loss):
    np.testing.assert_array_equal(pareto_mask(loss), brute_force_mask(loss))


@settings(max_examples=40, deadline=None)
@given(losses)
def test_hypervolume_matches_cell_counting(loss):
    ref = np.full(loss.shape[1], 7.0)
    assert hypervolume(loss, ref) == brute_force_hv(loss, ref)


def test_closed_form_two_points():
    loss = np.array([[1.0, 3.0], [2.0, 1.0]])
    # union of [1,4]x[3,4] (3) and [2,4]x[1,4] (6) minus overlap [2,4]x[3,4] (2)
    assert hypervolume(loss, np.array([4.0, 4.0])) == 7.0


def test_points_outside_reference_count_nothing():
    assert hypervolume(np.array([[5.0, 5.0]]), np.array([4.0, 4.0])) == 0.0
    assert hypervolume(np.zeros((0, 2)), np.array([1.0, 1.0])) == 0.0


def test_mixed_directions_become_losses():
    values = np.array([[0.9, 10.0], [0.8, 5.0], [0.7, 20.0]])
    loss = to_loss(values, ["maximize", "minimize"])
    assert pareto_mask(loss).tolist() == [True, True, False]


def test_default_reference_is_beyond_the_nadir():
    loss = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert np.all(default_reference(loss) > loss.max(axis=0))


def test_crowding_distance_ranks_extremes_then_isolated_points():
    # a 2-D front: the extremes are infinite; (0.1, 0.9) has close neighbours on both sides,
    # (0.6, 0.4) sits in a gap
    loss = np.array([[0.0, 1.0], [0.1, 0.9], [0.2, 0.8], [0.6, 0.4], [1.0, 0.0]])
    dist = crowding_distance(loss)
    assert np.isinf(dist[0]) and np.isinf(dist[4])
    np.testing.assert_allclose(dist[[1, 2, 3]], [0.4, 1.0, 1.6])
    assert np.isinf(crowding_distance(loss[:2])).all()


def inclusion_exclusion_hv(loss: np.ndarray, ref: np.ndarray) -> float:
    """Exact HV for a few real-valued points: the union of boxes by inclusion-exclusion."""
    total = 0.0
    for k in range(1, len(loss) + 1):
        for subset in itertools.combinations(range(len(loss)), k):
            corner = loss[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.clip(ref - corner, 0, None)))
    return total


def test_hypervolume_on_real_values_matches_inclusion_exclusion():
    rng = np.random.default_rng(0)
    for m in (2, 3, 4):
        for n in (1, 3, 7):
            loss = rng.uniform(0, 1, (n, m))
            ref = np.full(m, 1.1)
            assert np.isclose(hypervolume(loss, ref), inclusion_exclusion_hv(loss, ref),
                              rtol=1e-12, atol=1e-12), (m, n)


def test_loss_signs_read_strings_and_optuna_directions():
    from optuna.study import StudyDirection

    from surrogate.pareto import loss_signs

    np.testing.assert_array_equal(loss_signs(["maximize", "minimize"]), [-1.0, 1.0])
    np.testing.assert_array_equal(
        loss_signs([StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE]), [1.0, -1.0])
    np.testing.assert_array_equal(to_loss(np.array([[2.0, 3.0]]), ["maximize", "minimize"]),
                                  [[-2.0, 3.0]])
