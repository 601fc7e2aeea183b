"""Batch selection rules of ``surrogate.acquisition`` on hand-made fronts."""

from __future__ import annotations

import numpy as np

from surrogate.acquisition import front_reference, front_segments, select_batch

# A measured front along a line, every column a loss (minimised).
FRONT = np.array([[0.0, 5.0], [1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0], [5.0, 0.0]])


def test_front_reference_is_the_front_nadir_plus_a_margin_without_far_out_archs():
    rng = np.random.default_rng(0)
    crowd = np.column_stack([rng.uniform(1, 5, 200), rng.uniform(1, 5, 200)])
    outlier = [[100.0, -1.0]]  # chance-level accuracy but the fastest arch: on the front
    losses = np.vstack([FRONT, crowd, outlier])
    ref = front_reference(losses, margin=0.1)
    # The outlier (beyond Q3 + 3 IQR on the first column) is not the front's nadir.
    np.testing.assert_allclose(ref, [5.5, 5.5])
    # Unlike the median arch, the reference credits the front's slow end.
    assert np.all(ref > np.median(losses, axis=0))


def test_front_segments_cut_the_front_in_runs_along_the_first_objective():
    points = np.array([[0.1, 5.1], [4.9, 0.2], [2.4, 2.6], [0.9, 4.2]])
    np.testing.assert_array_equal(front_segments(points, FRONT, 3), [0, 2, 1, 0])
    # Fewer front members than runs: one run per member.
    np.testing.assert_array_equal(front_segments(points, FRONT[:2], 5), [0, 1, 1, 1])


def test_spread_batch_takes_one_pick_per_part_of_the_front():
    # Four strong candidates beyond the front's first end, one weaker one beyond each of the
    # two other thirds: the greedy rule stays at the strong end, spread goes along the front.
    mean = np.array([[-2.0, 4.5], [-1.5, 4.0], [-1.0, 3.5], [-0.5, 3.0],
                     [2.5, 1.5], [4.5, -0.5]])
    std = np.zeros_like(mean)
    kw = {"batch_size": 3, "kappa": 0.0, "reference": np.array([6.0, 6.0])}
    plain = select_batch(mean, std, FRONT, **kw)
    spread = select_batch(mean, std, FRONT, spread=True, **kw)
    assert set(plain) <= {0, 1, 2, 3}
    assert spread[0] == plain[0]
    assert sorted(spread[1:]) == [4, 5]


def test_hypervolume_in_the_objectives_units():
    # On a log scale the fast candidate (0.01 ms) looks like the larger gain; in
    # milliseconds the accurate one does (it saves a little accuracy over a wide latency span).
    front = np.array([[-0.80, np.log(1.0)]])
    mean = np.array([[-0.79, np.log(0.01)], [-0.90, np.log(0.9)]])
    std = np.zeros_like(mean)

    def to_units(loss: np.ndarray) -> np.ndarray:
        return np.column_stack([loss[:, 0], np.exp(loss[:, 1])])

    ref_log, ref_ms = np.array([-0.7, np.log(10.0)]), np.array([-0.7, 10.0])
    assert select_batch(mean, std, front, batch_size=1, kappa=0, reference=ref_log) == [0]
    assert select_batch(mean, std, front, batch_size=1, kappa=0, reference=ref_ms,
                        to_units=to_units) == [1]


def test_feasibility_weights_the_improvement_and_keeps_likely_infeasible_picks_off_the_front():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    # 0 and 1 (twins) add the same volume; 2 adds less, and still adds some beside them
    mean = np.array([[0.2, 0.2], [0.2, 0.2], [0.1, 0.8]])
    std = np.zeros_like(mean)
    ref = np.array([2.0, 2.0])
    assert select_batch(mean, std, front, batch_size=1, kappa=0, reference=ref,
                        feasibility=np.array([0.1, 0.9, 1.0]))[0] == 1
    # unlikely feasible everywhere but 2: 2's smaller volume at p=1 beats 0's at p=0.05
    assert select_batch(mean, std, front, batch_size=1, kappa=0, reference=ref,
                        feasibility=np.array([0.05, 0.05, 1.0]))[0] == 2
    # a likely infeasible first pick is no fantasy: its twin still adds its full volume next
    batch = select_batch(mean, std, front, batch_size=2, kappa=0, reference=ref,
                         feasibility=np.array([0.4, 0.35, 0.3]))
    assert batch == [0, 1]
    without = select_batch(mean, std, front, batch_size=2, kappa=0, reference=ref)
    assert without[1] == 2  # with the first pick as a fantasy its twin adds nothing


def test_lazy_greedy_picks_what_scoring_every_candidate_picks():
    """3+ objectives use lazy greedy (``LazyGains``); it must pick what the plain greedy rule
    (every candidate's exact improvement, every pick) picks."""
    from surrogate.acquisition import epsilon_to_front, hv_improvement
    from surrogate.pareto import pareto_mask

    rng = np.random.default_rng(3)
    for m, weighted in ((3, False), (4, False), (3, True)):
        front = rng.random((30, m))
        front = front[pareto_mask(front)]
        mean, std = rng.random((300, m)), rng.random((300, m)) * 0.05
        pf = rng.random(300) if weighted else np.ones(300)
        got = select_batch(mean, std, front, batch_size=6, kappa=1.0,
                           feasibility=pf if weighted else None)
        opt = mean - std
        worst, best = front.max(axis=0), front.min(axis=0)
        ref = worst + 0.1 * (worst - best)
        nd, available, want = front, np.ones(300, dtype=bool), []
        for _ in range(6):
            gain = hv_improvement(opt, nd, ref)
            score = np.where(gain > 0, gain * pf, -epsilon_to_front(opt, nd) / pf)
            score[~available] = -np.inf
            i = int(np.argmax(score))
            want.append(i)
            available[i] = False
            if pf[i] >= 0.5:
                nd = np.vstack([nd, mean[i]])
                nd = nd[pareto_mask(nd)]
        assert got == want, (m, weighted)


def test_hv_improvement_in_3d_equals_the_difference_of_hypervolumes():
    from surrogate.acquisition import hv_improvement
    from surrogate.pareto import hypervolume, pareto_mask

    rng = np.random.default_rng(4)
    front = rng.random((25, 3))
    front = front[pareto_mask(front)]
    points, ref = rng.random((50, 3)) * 0.9, np.full(3, 1.1)
    base = hypervolume(front, ref)
    want = [hypervolume(np.vstack([front, p]), ref) - base for p in points]
    assert np.allclose(hv_improvement(points, front, ref), want, atol=1e-12)


def test_min_feasibility_keeps_unlikely_feasible_gains_from_winning():
    """Once nothing likely feasible adds volume (the feasible front is complete), a likely
    infeasible candidate's gain x probability still wins by default; with min_feasibility it
    earns nothing and the likely feasible candidate nearest the front comes first. With 2 and
    with 3 objectives (the lazy greedy path)."""
    for m in (2, 3):
        front = np.eye(m)
        mean = np.vstack([np.full(m, 0.3),  # adds volume, p = 0.1
                          np.full(m, 1.2),  # dominated, close to the front, p = 0.9
                          np.full(m, 1.8)])  # dominated, far, p = 0.95
        std, ref = np.zeros_like(mean), np.full(m, 2.0)
        pf = np.array([0.1, 0.9, 0.95])
        assert select_batch(mean, std, front, batch_size=1, kappa=0, reference=ref,
                            feasibility=pf) == [0]
        assert select_batch(mean, std, front, batch_size=1, kappa=0, reference=ref,
                            feasibility=pf, min_feasibility=0.5) == [1]
        # a likely feasible candidate that adds volume still wins as before
        assert select_batch(mean, std, front, batch_size=1, kappa=0, reference=ref,
                            feasibility=np.array([0.6, 0.9, 0.95]), min_feasibility=0.5) == [0]
