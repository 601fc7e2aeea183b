"""``bench/search_efficiency.py --merge``: runs of other methods on the same dataset combine
with stored ones (no table needed: the inputs are the bench's JSON outputs)."""

from __future__ import annotations

import json

import pytest

from bench.search_efficiency import merge

BUDGETS = [50, 100]


def method(recall: float, hv: float, cap: int = 100, hv99: float | None = None) -> dict:
    return {"recall": {str(b): recall for b in BUDGETS}, "hv_ratio": {str(b): hv for b in BUDGETS},
            "evals_to_hv_ratio_0.99": hv99, "evals_to_recall_0.5": None, "evals_cap": cap,
            "evals": cap, "asks": cap, "cpu_s_per_run": 1.0}


def run(tmp_path, name: str, methods: dict, *, options=None, long=(), dataset="cora",
        archs=100) -> object:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({
        "benchmark": "search_efficiency", "budgets": BUDGETS, "seeds": 5,
        "methods": list(methods), "strategy_options": options or {},
        "long_budget": 1000, "long_methods": list(long),
        "datasets": {dataset: {"archs": archs, "true_front": 3, "reference_point": [0.5, 2.0],
                               "methods": methods}},
    }))
    return path


def test_a_surrogate_only_run_replaces_the_stored_one_next_to_the_baselines(tmp_path):
    stored = run(tmp_path, "stored", {"nsga2": method(0.2, 0.9, cap=1000, hv99=600),
                                      "surrogate": method(0.1, 0.8)}, long=["nsga2"])
    new = run(tmp_path, "new", {"surrogate": method(0.3, 0.95)},
              options={"surrogate": {"reference": "front"}})
    out = merge([stored, new])
    entry = out["datasets"]["cora"]["methods"]
    assert list(entry) == ["nsga2", "surrogate"]
    assert entry["surrogate"]["hv_ratio"][100] == 0.95  # the later file wins
    assert entry["nsga2"]["hv_ratio"][100] == 0.9
    assert out["sources"]["cora"] == {"nsga2": str(stored), "surrogate": str(new)}
    assert out["strategy_options"] == {"surrogate": {"reference": "front"}}
    assert out["long_methods"] == ["nsga2"] and out["long_budget"] == 1000
    assert out["versus"]["nsga2"]["cora"]["worse_at"] == []
    assert out["summary"]["surrogate"]["hv_ratio"][100] == 0.95


def test_datasets_without_a_method_are_left_out_of_its_summary(tmp_path):
    a = run(tmp_path, "a", {"nsga2": method(0.2, 0.9), "surrogate": method(0.1, 0.8)})
    b = run(tmp_path, "b", {"nsga2": method(0.4, 0.7)}, dataset="pubmed")
    out = merge([a, b])
    assert out["summary"]["surrogate"]["hv_ratio"][50] == 0.8
    assert out["summary"]["nsga2"]["recall"][50] == pytest.approx(0.3)
    assert list(out["versus"]["nsga2"]) == ["cora"]


def test_one_method_from_two_settings_is_refused(tmp_path):
    a = run(tmp_path, "a", {"surrogate": method(0.1, 0.8)})
    b = run(tmp_path, "b", {"surrogate": method(0.1, 0.8)}, dataset="pubmed",
            options={"surrogate": {"kappa": 2.0}})
    with pytest.raises(SystemExit, match="one method's figures must come from one setting"):
        merge([a, b])


def test_the_same_dataset_from_another_table_is_refused(tmp_path):
    a = run(tmp_path, "a", {"nsga2": method(0.2, 0.9)})
    b = run(tmp_path, "b", {"surrogate": method(0.1, 0.8)}, archs=99)
    with pytest.raises(SystemExit, match="another table"):
        merge([a, b])
