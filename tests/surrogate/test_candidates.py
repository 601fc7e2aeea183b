"""IndexedSpace restricted to per-dimension choices and to whole combinations of a group of
dimensions (a two-stage study's second stage), on a real grid space (RandLA-Net's)."""

from __future__ import annotations

import numpy as np
import pytest

from search_spaces.randlanet.space import RandLANetSpace
from surrogate.candidates import IndexedSpace, candidate_pool


@pytest.fixture(scope="module")
def ispace() -> IndexedSpace:
    space = RandLANetSpace({"max_widths": [8, 16], "num_points": [128, 256, 512],
                            "ratios": [4, 2], "ks": [4, 8], "depths": [1, 2]})
    return IndexedSpace(space)


def test_combinations_of_a_group_are_the_only_ones_drawn(ispace):
    names = ispace.names
    group = (names.index("num_points"), names.index("k_0"))
    combos = [(0, 1), (2, 0)]  # (128 points, k 8) and (512 points, k 4)
    ispace.restrict(None, (group, combos))
    try:
        others = [len(a) for j, a in enumerate(ispace.allowed) if j not in group]
        assert ispace.size == int(np.prod(others)) * 2
        everything = ispace.enumerate_all()
        assert len(everything) == len(set(everything)) == ispace.size
        assert {tuple(i[j] for j in group) for i in everything} == set(combos)
        drawn = ispace.random(np.random.default_rng(0), 200)
        assert all(ispace.contains(i) for i in drawn)
        assert {tuple(i[j] for j in group) for i in drawn} == set(combos)
        start = everything[0]
        moves = ispace.neighbours(start)
        assert moves and all(ispace.contains(i) for i in moves)
        # the group moves as a whole: one move takes the other combination, nothing in between
        assert sum(tuple(i[j] for j in group) != tuple(start[j] for j in group)
                   for i in moves) == 1
        assert (0, 0) not in {tuple(i[j] for j in group) for i in candidate_pool(
            ispace, [start], exclude=set(), n_random=50, rng=np.random.default_rng(1))}
    finally:
        ispace.restrict(None)
    assert ispace.size == int(np.prod(ispace.sizes))
