"""``ask_valid``: invalid proposals are re-asked, not returned; a stuck sampler is repaired to
the nearest valid arch; a clear error when nothing valid can be found."""

from __future__ import annotations

import csv

import optuna
import pytest
from optuna.trial import TrialState

from search_spaces.base import Arch
from search_spaces.table import TableSpace
from service.engine.stages import single_stage_view
from service.engine.valid_ask import NoValidArch, ask_valid
from tests.search_spaces.test_table import write_sparse_table


@pytest.fixture
def sparse(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    present = write_sparse_table(tmp_path / "s.csv")
    return TableSpace({"path": "s.csv", "params": list("abcd")}), present


class StuckSampler(optuna.samplers.BaseSampler):
    """Always proposes the first choice of every dimension (as a sampler settled on a region
    without rows does: Optuna's samplers learn nothing from failed trials)."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        return param_distribution.choices[0]


def test_invalid_proposals_are_told_failed_and_skipped(sparse):
    space, present = sparse
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    view = single_stage_view(space)
    skipped = []
    for _ in range(20):
        trial, arch, n = ask_valid(study, view, space)
        assert arch.key() in present and Arch(trial.params) == arch
        skipped.append(n)
        study.tell(trial, 1.0)
    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == sum(skipped) > 0  # every skipped proposal, and only those, failed
    assert all(Arch(t.params).key() not in present for t in failed)


def test_a_stuck_sampler_gets_the_nearest_valid_arch(sparse):
    space, present = sparse
    stuck = Arch({"a": 0, "b": 0, "c": 0, "d": 0})
    assert stuck.key() not in present
    study = optuna.create_study(sampler=StuckSampler())
    trial, arch, skipped = ask_valid(study, single_stage_view(space), space, repair_after=5)
    assert skipped == 5 and arch.key() in present
    differing = sum(arch[n] != 0 for n in "abcd")
    assert differing == min(sum(a[n] != 0 for n in "abcd")
                            for a in space.enumerate_archs())


def test_no_valid_arch_anywhere_is_a_clear_error(tmp_path, monkeypatch):
    class NoRows(TableSpace):  # a space that cannot list its archs and accepts none
        def is_valid(self, arch):
            return False

        def enumerate_archs(self):
            return None

    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    with open(tmp_path / "t.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["x", "acc"], [0, 0.5], [1, 0.6]])
    space = NoRows({"path": "t.csv", "params": ["x"]})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    with pytest.raises(NoValidArch, match="5 archs in a row.*cannot evaluate"):
        ask_valid(study, single_stage_view(space), space, max_asks=5)
    assert len(study.get_trials()) == 5


def test_table_space_is_valid_only_for_its_rows(sparse):
    space, present = sparse
    grid = [Arch(dict(zip("abcd", (a, b, c, d), strict=True)))
            for a in range(5) for b in range(5) for c in range(5) for d in range(5)]
    assert {a.key() for a in grid if space.is_valid(a)} == present
    assert 0 < len(present) < len(grid)
