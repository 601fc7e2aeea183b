"""The measured rank correlations of the supernet spaces and the warning for poor ones."""

from __future__ import annotations

import json

import pytest

from search_spaces import SPACES, ranking


@pytest.fixture
def figures(tmp_path, monkeypatch):
    path = tmp_path / "weight_sharing.json"
    monkeypatch.setattr(ranking, "FIGURES", path)
    ranking._figures.cache_clear()
    yield path
    ranking._figures.cache_clear()


def test_shipped_figures_name_known_spaces_and_their_command():
    ranking._figures.cache_clear()
    shipped = json.loads(ranking.FIGURES.read_text())
    assert set(shipped) <= set(SPACES.names())
    for name, entry in shipped.items():
        assert -1 <= entry["kendall_tau"] <= 1, name
        assert entry["command"].startswith("python bench/weight_sharing.py"), name
        assert ranking.rank_correlation(name) == entry
    assert ranking.rank_correlation("table") is None


def test_warning_only_below_the_threshold(figures):
    figures.write_text(json.dumps({
        "poor": {"kendall_tau": 0.3, "kendall_tau_recalibrated": 0.7, "metric": "miou",
                 "command": "python bench/weight_sharing.py --full"},
        "good": {"kendall_tau": 0.8, "command": "python bench/weight_sharing.py --full"},
    }))
    text = ranking.ranking_warning("poor")
    assert text is not None and "0.30" in text and "fine-tune" in text and "--full" in text
    assert ranking.ranking_warning("good") is None
    assert ranking.ranking_warning("unmeasured") is None
    # a study that recalibrates BatchNorm is judged by the recalibrated figure
    assert ranking.ranking_warning("poor", {"bn_recalibration_batches": 4}) is None
    assert ranking.ranking_warning("poor", {"calibrate_bn": 4}) is None
    assert ranking.ranking_warning("poor", {"bn_recalibration_batches": 0}) is not None


def test_no_figures_file_means_no_figures(figures):
    assert ranking.rank_correlation("deeplabv3plus") is None
    assert ranking.ranking_warning("deeplabv3plus") is None


def test_a_fresh_draw_below_the_threshold_warns(figures):
    """The recipe was chosen on one draw of subnets; a lower tau on another draw counts."""
    figures.write_text(json.dumps({"s": {
        "kendall_tau": 0.7, "kendall_tau_recalibrated": 0.8,
        "command": "python bench/weight_sharing.py --full",
        "out_of_sample": {"arch_seed": 1, "kendall_tau": 0.65, "kendall_tau_recalibrated": 0.5}}}))
    assert ranking.ranking_warning("s") is None  # 0.7 and 0.65 both pass
    text = ranking.ranking_warning("s", {"calibrate_bn": 4})
    assert text is not None and "0.50" in text
