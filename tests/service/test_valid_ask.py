"""``ask_valid``: invalid proposals are re-asked, not returned; a clear error when none is."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from search_spaces.base import Arch
from service.valid_ask import NoValidArch, ask_valid

DISTS = {"x": CategoricalDistribution([0, 1, 2, 3]), "y": CategoricalDistribution([0, 1])}


def test_invalid_proposals_are_told_failed_and_skipped():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(20):
        trial, arch, skipped = ask_valid(study, DISTS, Arch, lambda a: a["x"] == 3)
        assert arch["x"] == 3 and trial.params["x"] == 3
        seen.append(skipped)
        study.tell(trial, 1.0)
    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == sum(seen) > 0  # every skipped proposal, and only those, failed
    assert all(t.params["x"] != 3 for t in failed)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 20


def test_a_sampler_that_never_finds_a_valid_arch_raises_a_clear_error():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    with pytest.raises(NoValidArch, match="5 archs in a row.*cannot evaluate"):
        ask_valid(study, DISTS, Arch, lambda a: False, max_asks=5)
    assert len(study.get_trials()) == 5


def test_table_space_is_valid_only_for_its_rows(tmp_path, monkeypatch):
    from search_spaces.table import TableSpace
    from tests.search_spaces.test_table import write_sparse_table

    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    present = write_sparse_table(tmp_path / "s.csv")
    space = TableSpace({"path": "s.csv", "params": list("abcd")})
    grid = [Arch(dict(zip("abcd", (a, b, c, d), strict=True)))
            for a in range(5) for b in range(5) for c in range(5) for d in range(5)]
    assert {a.key() for a in grid if space.is_valid(a)} == present
    assert 0 < len(present) < len(grid)
