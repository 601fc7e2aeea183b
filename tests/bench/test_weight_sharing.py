"""``bench/weight_sharing.py``: the subnet choice is fixed by a rule (seeded, spread over MACs),
the memo is shared between processes, and the service's figures come from the bench output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.weight_sharing import Memo, figures_of, merge_figures, rank, spread_archs
from search_spaces.deeplabv3plus.space import DeepLabSpace
from tests.search_spaces.test_deeplabv3plus import TINY


def test_archs_are_seeded_distinct_and_span_the_cost_range():
    space = DeepLabSpace(TINY)
    archs = spread_archs(space, 12, pool=200)
    assert [a.key() for a in archs] == [a.key() for a in spread_archs(space, 12, pool=200)]
    assert len({a.key() for a in archs}) == 12
    macs = [space.cost(a)["macs"] for a in archs]
    pool_rng = np.random.default_rng(0)
    pool = [space.cost(space.sample(pool_rng))["macs"] for _ in range(200)]
    assert macs == sorted(macs)  # quantiles in increasing order
    assert macs[0] <= np.quantile(pool, 0.05) and macs[-1] >= np.quantile(pool, 0.95)


def test_rank_statistics():
    assert rank([1, 2, 3, 4], [10, 20, 30, 40])["kendall_tau"] == 1.0
    assert rank([1, 2, 3, 4], [40, 30, 20, 10])["spearman_rho"] == -1.0


def test_memo_merges_values_of_other_processes(tmp_path):
    path = tmp_path / "m.json"
    first, second = Memo(path), Memo(path)
    assert first.get("a", lambda: 1) == 1
    assert second.get("b", lambda: 2) == 2
    assert second.get("a", lambda: 99) == 1 and second.hits == 1  # measured by the other one
    assert json.loads(path.read_text()) == {"a": 1, "b": 2}


def test_figures_pick_the_best_recipe_and_keep_the_command():
    def recipe(tau_recal: float, share: float = 0.8) -> dict:
        pair = {"kendall_tau": tau_recal}
        return {"tau_vs_scratch": {"inherited_subset": {"kendall_tau": 0.1},
                                   "inherited_recal_subset": pair,
                                   "inherited_recal_full": pair},
                "recal_share_of_scratch_median": share}
    out = {"command": "python bench/weight_sharing.py --full",
           "deeplabv3plus": {"setup": {"archs": 12},
                             "recipes": {"a": recipe(0.2), "b": recipe(0.7)}},
           "randlanet": {"setup": {"archs": 13},
                         "recipes": {"c": recipe(0.65), "d": recipe(0.3)}}}
    figures = figures_of(out)
    fig = figures["deeplabv3plus"]
    assert fig["recipe"] == "b" and fig["kendall_tau_recalibrated"] == 0.7
    assert fig["kendall_tau"] == 0.1 and fig["kendall_tau_by_recipe"] == {"a": 0.2, "b": 0.7}
    assert fig["command"] == out["command"]
    fig = figures["randlanet"]
    assert fig["recipe"] == "c" and fig["archs"] == 13 and fig["kendall_tau_recalibrated"] == 0.65
    # a recipe whose inherited weights reach 90% of the trained mIoU comes first
    out["deeplabv3plus"]["recipes"]["e"] = recipe(0.6, share=0.93)
    fig = figures_of(out)["deeplabv3plus"]
    assert fig["recipe"] == "e" and fig["recalibrated_share_of_trained_miou"] == 0.93
    assert fig["share_by_recipe"] == {"a": 0.8, "b": 0.8, "e": 0.93}


def test_another_draw_adds_out_of_sample_figures_for_the_chosen_recipe():
    shipped = {"deeplabv3plus": {"recipe": "a", "kendall_tau": 0.7}, "bert": {"kendall_tau": 0.8}}
    fresh = {"deeplabv3plus": {"recipe": "a", "archs": 12, "kendall_tau": 0.5,
                               "kendall_tau_recalibrated": 0.55, "command": "python x"}}
    merged = merge_figures(shipped, fresh, arch_seed=1)
    assert merged["bert"] == shipped["bert"]
    assert merged["deeplabv3plus"]["kendall_tau"] == 0.7  # the seed-0 figures stay
    assert merged["deeplabv3plus"]["out_of_sample"] == {
        "arch_seed": 1, "archs": 12, "kendall_tau": 0.5, "kendall_tau_recalibrated": 0.55,
        "command": "python x"}
    assert merge_figures(shipped, fresh, arch_seed=0)["deeplabv3plus"] == fresh["deeplabv3plus"]
    with pytest.raises(ValueError, match="recipe"):
        merge_figures(shipped, {"deeplabv3plus": {**fresh["deeplabv3plus"], "recipe": "b"}},
                      arch_seed=1)
