"""StudyRunner in-process (memory store) on the table space."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from service.engine.records import MemoryStore
from service.engine.resolve import resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from tests.conftest import table_spec
from tests.service.helpers import brute_force_front


def run(spec: dict, store: MemoryStore | None = None) -> MemoryStore:
    store = store or MemoryStore()
    StudyRunner(resolve_spec(StudySpec.model_validate(spec)), store).run()
    return store


def as_dicts(store: MemoryStore) -> list[dict]:
    return [asdict(t) for t in store.trials]


@pytest.mark.parametrize("strategy", ["random", "nsga2", "nsga3", "tpe"])
def test_every_strategy_runs_the_exact_budget_and_keeps_the_true_front(data_dir, strategy):
    spec = table_spec(strategy={"name": strategy}, budget={"trials": 25})
    if strategy.startswith("nsga"):
        spec["strategy"]["options"] = {"population_size": 6}
    store = run(spec)
    assert [t.number for t in store.trials] == list(range(25))
    front = {t.number for t in store.trials if t.on_front}
    assert front == brute_force_front(as_dicts(store), spec)
    assert store.best_hypervolume is not None and store.best_hypervolume > 0
    hv = [v for _, v in store.hypervolume]
    assert hv == sorted(hv), "hypervolume never decreases"


def test_a_repeated_arch_is_not_evaluated_twice(data_dir, monkeypatch):
    from search_spaces.table import TableSpace

    calls = []
    original = TableSpace.evaluate
    monkeypatch.setattr(TableSpace, "evaluate",
                        lambda self, arch, m, **kw: calls.append(arch.key()) or
                        original(self, arch, m, **kw))
    store = run(table_spec(budget={"trials": 40}))  # 18 archs: repeats are certain
    assert len(calls) == len(set(calls)) == len({t.arch_key for t in store.trials})
    dupes = [t for t in store.trials if "duplicate_of" in t.info]
    assert dupes and all(not t.on_front for t in dupes)


@pytest.mark.parametrize("strategy", [{"name": "nsga2", "options": {"population_size": 6}},
                                      {"name": "surrogate", "options": {"n_initial": 4}}])
def test_constraints_keep_infeasible_trials_off_the_front(data_dir, strategy):
    spec = table_spec(constraints=[{"metric": "latency_ms", "max": 6}], budget={"trials": 30},
                      strategy=strategy)
    store = run(spec)
    front = [t for t in store.trials if t.on_front]
    assert front and all(t.values["latency_ms"] <= 6 for t in front)
    assert {t.number for t in front} == brute_force_front(as_dicts(store), spec)


@pytest.mark.parametrize("strategy", ["random", "nsga2", "tpe", "surrogate"])
def test_an_arch_without_a_row_is_re_asked_not_a_trial(tmp_path, monkeypatch, strategy):
    """Equal footing (issue #17): on a table that lacks rows no strategy spends a trial on an
    arch without one, so ``budget.trials`` counts evaluations for all of them."""
    from tests.search_spaces.test_table import write_sparse_table

    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    present = write_sparse_table(tmp_path / "t.csv")
    spec = table_spec(budget={"trials": 30}, strategy={"name": strategy},
                      search_space={"name": "table", "options": {
                          "path": "t.csv", "params": ["a", "b", "c", "d"]}},
                      objectives=[{"metric": "acc", "direction": "maximize"},
                                  {"metric": "latency_ms", "direction": "minimize"}])
    if strategy == "nsga2":
        spec["strategy"]["options"] = {"population_size": 6}
    store = run(spec)
    assert len(store.trials) == 30
    assert all(t.state == "complete" for t in store.trials)
    assert {t.arch_key for t in store.trials} <= present


def test_resume_continues_without_losing_or_repeating(data_dir):
    spec = table_spec(budget={"trials": 20})
    first = run({**spec, "budget": {"trials": 8}})
    # a new runner on the same store, as after a crash: it sees 8 trials and runs 12 more
    resumed = run(spec, first)
    numbers = [t.number for t in resumed.trials]
    assert numbers == list(range(20))
    assert {t.number for t in resumed.trials if t.on_front} == brute_force_front(
        as_dicts(resumed), spec)


def test_time_budget_stops_early(data_dir):
    store = run(table_spec(budget={"trials": 100_000, "seconds": 0.3}))
    assert 0 < len(store.trials) < 100_000
    assert store.reference_point is not None


def test_stop_request_is_honoured_between_trials(data_dir):
    store = MemoryStore()
    store.stop_requested = True
    runner = StudyRunner(resolve_spec(StudySpec.model_validate(table_spec())), store)
    assert runner.run() == "stopped"
    assert store.trials == []


def test_a_resumed_nsga2_study_continues_its_generations(data_dir):
    spec = table_spec(strategy={"name": "nsga2", "options": {"population_size": 4}},
                      budget={"trials": 24})
    first = run({**spec, "budget": {"trials": 12}})
    resumed = run(spec, first)

    def generation(t):
        return t.info["optuna_attrs"]["NSGAIISampler:generation"]

    before = max(generation(t) for t in resumed.trials[:12])
    assert before >= 2
    assert min(generation(t) for t in resumed.trials[12:]) >= before


def test_equivalent_archs_are_measured_once(data_dir, monkeypatch):
    # A space whose "width" does not change a "skip" network: the two skip archs of each depth
    # are one network, measured once; the second is a duplicate of the first.
    from search_spaces.table import TableSpace

    monkeypatch.setattr(TableSpace, "inactive",
                        lambda self, arch: {"width"} if arch["op"] == "skip" else set())
    calls = []
    original = TableSpace.evaluate
    monkeypatch.setattr(TableSpace, "evaluate",
                        lambda self, arch, m, **kw: calls.append(arch.to_dict()) or
                        original(self, arch, m, **kw))
    store = run(table_spec(budget={"trials": 60}))  # 18 archs, 15 networks
    networks = {(a["depth"], a["op"], None if a["op"] == "skip" else a["width"]) for a in calls}
    assert len(calls) == len(networks)
    skips = [t for t in store.trials if t.arch["op"] == "skip"]
    assert len({t.arch_key for t in skips}) == len({t.arch["depth"] for t in skips})
    assert any("duplicate_of" in t.info and store.trials[t.info["duplicate_of"]].arch != t.arch
               for t in skips)


@pytest.mark.parametrize("strategy", ["random", "nsga2", "tpe"])
def test_seed_extremes_starts_with_the_smallest_and_largest_arch(data_dir, strategy):
    spec = table_spec(strategy={"name": strategy}, budget={"trials": 6}, seed_extremes=True)
    resolved = resolve_spec(StudySpec.model_validate(spec))
    dims = resolved.space.dimensions()
    store = MemoryStore()
    StudyRunner(resolved, store).run()
    assert store.trials[0].arch == {n: d.choices[0] for n, d in dims.items()}
    assert store.trials[1].arch == {n: d.choices[-1] for n, d in dims.items()}
    assert not any("duplicate_of" in t.info for t in store.trials[:2])


def test_seed_extremes_are_not_repeated_on_resume(data_dir):
    spec = table_spec(budget={"trials": 1}, seed_extremes=True)
    store = run(spec)
    run({**spec, "budget": {"trials": 4}}, store)
    dims = resolve_spec(StudySpec.model_validate(spec)).space.dimensions()
    # the resumed study goes on with the largest arch, not the smallest once more
    assert store.trials[0].arch == {n: d.choices[0] for n, d in dims.items()}
    assert store.trials[1].arch == {n: d.choices[-1] for n, d in dims.items()}


def test_the_gp_strategy_runs_optunas_gp_sampler_with_constraints(data_dir):
    """``gp``: Optuna's GPSampler (multi-objective, constraint-aware), the issue #17 baseline."""
    spec = table_spec(strategy={"name": "gp", "options": {"n_startup_trials": 4}},
                      constraints=[{"metric": "latency_ms", "max": 6}], budget={"trials": 7})
    store = run(spec)
    assert len(store.trials) == 7 and all(t.state == "complete" for t in store.trials)
    front = [t for t in store.trials if t.on_front]
    assert all(t.values["latency_ms"] <= 6 for t in front)
