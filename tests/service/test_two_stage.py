"""Two-stage search (``"stages": 2``) on the table space, through the real StudyRunner."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from pydantic import ValidationError

from service.engine.records import MemoryStore
from service.engine.resolve import SpecError, resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from service.engine.stages import StagePlan
from tests.conftest import table_spec
from tests.service.helpers import brute_force_front

LARGEST = {"op": "skip", "width": 16}  # the table's non-stage-1 dims at their last choice


def two_stage_spec(**overrides) -> dict:
    spec = table_spec(stages=2, stage1_dims=["depth"], stage1_fraction=0.25,
                      budget={"trials": 16},
                      strategy={"name": "nsga2", "options": {"population_size": 4}})
    spec.update(overrides)
    return spec


def run(spec: dict, store: MemoryStore | None = None) -> MemoryStore:
    store = store or MemoryStore()
    StudyRunner(resolve_spec(StudySpec.model_validate(spec)), store).run()
    return store


def stage1_front_values(store: MemoryStore, spec: dict) -> set:
    trials = [asdict(t) for t in store.trials if t.stage == 1]
    front = brute_force_front(trials, spec)
    return {t["arch"]["depth"] for t in trials if t["number"] in front}


def test_stage_one_fixes_the_other_dims_and_stage_two_starts_from_its_front(data_dir):
    spec = two_stage_spec()
    store = run(spec)
    assert [t.number for t in store.trials] == list(range(16))
    stage1 = [t for t in store.trials if t.stage == 1]
    stage2 = [t for t in store.trials if t.stage == 2]
    assert len(stage1) == 4 and len(stage2) == 12  # 25% of 16
    for t in stage1:
        assert {k: t.arch[k] for k in LARGEST} == LARGEST
    allowed = stage1_front_values(store, spec)
    assert allowed and all(t.arch["depth"] in allowed for t in stage2)
    # stage 2 explores what stage 1 held fixed
    assert len({(t.arch["op"], t.arch["width"]) for t in stage2}) > 1
    # the study's front is the front of both stages together
    front = {t.number for t in store.trials if t.on_front}
    assert front == brute_force_front([asdict(t) for t in store.trials], spec)
    summary = store.extra["stages"]
    assert summary["stage1_dims"] == ["depth"] and summary["stage2_dims"] == ["op", "width"]
    assert summary["stage1_trials"] == 4
    assert set(summary["stage2_choices"]["depth"]) == allowed
    assert set(summary["stage1_front"]) == brute_force_front(
        [asdict(t) for t in store.trials if t.stage == 1], spec)
    assert_seeded_from_front(store)


def assert_seeded_from_front(store: MemoryStore) -> None:
    """The first stage-2 trials take the stage-1 front's configurations, in order."""
    front = [store.trials[n].arch["depth"] for n in store.extra["stages"]["stage1_front"]]
    stage2 = [t.arch["depth"] for t in store.trials if t.stage == 2]
    assert stage2[: len(front)] == front


def test_default_split_uses_the_dims_stage_tags(data_dir):
    from search_spaces.randlanet.space import RandLANetSpace

    space = RandLANetSpace({"max_widths": [8, 16], "num_points": [128, 256], "ratios": [4, 2],
                            "ks": [4, 8], "depths": [1, 2]})
    spec = StudySpec.model_validate(two_stage_spec(stage1_dims=None))
    plan = StagePlan(spec, space)
    assert plan.first == ["num_points", "ratio_0", "ratio_1", "k_0", "k_1"]
    assert plan.later == ["depth", "width_0", "width_1"]
    dists = plan.view(1, []).distributions
    assert dists["width_1"].choices == (16,) and dists["k_0"].choices == (4, 8)


def test_resuming_mid_study_keeps_the_stages(data_dir):
    spec = two_stage_spec(seed=3)
    store = MemoryStore()
    original = store.save_trial

    def save_then_stop_at_six(record, update):
        original(record, update)
        store.stop_requested = len(store.trials) >= 6

    store.save_trial = save_then_stop_at_six  # type: ignore[method-assign]
    runner = StudyRunner(resolve_spec(StudySpec.model_validate(spec)), store)
    assert runner.run() == "stopped"
    assert len(store.trials) == 6
    store.save_trial = original  # type: ignore[method-assign]
    store.stop_requested = False
    run(spec, store)
    assert [t.stage for t in store.trials] == [1] * 4 + [2] * 12
    allowed = stage1_front_values(store, spec)
    assert all(t.arch["depth"] in allowed for t in store.trials if t.stage == 2)
    assert_seeded_from_front(store)


def test_single_stage_studies_are_unchanged(data_dir):
    store = run(table_spec(budget={"trials": 10}))
    assert all(t.stage == 1 for t in store.trials) and "stages" not in store.extra


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"stage1_dims": ["nope"]}, "stage1_dims", "unknown dimension"),
        ({"stage1_dims": None}, "stages", "need dimensions in both stages"),
        ({"stage1_dims": ["depth", "op", "width"]}, "stages", "both stages"),
        ({"budget": {"trials": 1}}, "budget", "at least 2 trials"),
    ],
)
def test_impossible_two_stage_requests_name_the_field(data_dir, overrides, field, message):
    with pytest.raises(SpecError, match=message) as info:
        resolve_spec(StudySpec.model_validate(two_stage_spec(**overrides)))
    assert info.value.errors[0]["loc"][0] == field


def test_spec_shape_is_checked():
    with pytest.raises(ValidationError, match="stages"):
        StudySpec.model_validate(two_stage_spec(stages=3))
    with pytest.raises(ValidationError, match="stage1_fraction"):
        StudySpec.model_validate(two_stage_spec(stage1_fraction=1.0))


def test_both_stages_are_persisted_and_served_over_the_api(database_url, data_dir):
    from fastapi.testclient import TestClient

    from service.interfaces.api.app import create_app
    from service.interfaces.worker import Worker
    from service.settings import Settings

    app = create_app(Settings(database_url=database_url, max_trials=1000))
    try:
        client = TestClient(app)
        spec = two_stage_spec()
        r = client.post("/api/v1/studies", json=spec)
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["stages"] == 2
        worker = Worker(app.state.db, app.state.settings, worker_id="w")
        while worker.run_once() is not None:
            pass
        sid = r.json()["id"]
        study = client.get(f"/api/v1/studies/{sid}").json()
        assert study["status"] == "completed"
        trials = client.get(f"/api/v1/studies/{sid}/trials?limit=100").json()["data"]
        assert [t["stage"] for t in trials] == [1] * 4 + [2] * 12
        stages = study["extra"]["stages"]
        stage1 = [t for t in trials if t["stage"] == 1]
        assert set(stages["stage1_front"]) == brute_force_front(stage1, spec)
        front = client.get(f"/api/v1/studies/{sid}/pareto").json()["data"]
        assert {t["number"] for t in front} == brute_force_front(trials, spec)
        bad = client.post("/api/v1/studies", json=two_stage_spec(stage1_dims=["nope"]))
        assert bad.status_code == 422 and "stage1_dims" in bad.text
    finally:
        app.state.db.dispose()


def test_paretonas_run_reports_stages(data_dir):
    from service.interfaces.commands.run import run_in_process

    result = run_in_process(StudySpec.model_validate(two_stage_spec()), progress=False)
    assert [t["stage"] for t in result["trials"]] == [1] * 4 + [2] * 12
    assert result["study"]["extra"]["stages"]["stage1_trials"] == 4



def test_stage_two_history_carries_no_stage_one_sampler_state(data_dir):
    # Stage 1's front trials seed stage 2's Optuna study. Their NSGA-II generation tags belong
    # to stage 1's study: carried over, stage 2's NSGA-II would build a parent population from
    # the few front trials of some stage-1 generation (a single one crashes its crossover).
    spec = two_stage_spec(budget={"trials": 24}, stage1_fraction=0.5)
    store = run(spec)
    assert [t.stage for t in store.trials] == [1] * 12 + [2] * 12
    resumed = StudyRunner(resolve_spec(StudySpec.model_validate(spec)), store)
    resumed._load_history()
    study = resumed._make_optuna_study()
    assert resumed.stage == 2
    front = resumed.stages.stage1_front(resumed.records)
    assert any("optuna_attrs" in r.info for r in front)
    for rec, trial in zip(front, study.get_trials(), strict=False):
        assert resumed.view.arch_params(trial.params) == rec.arch
        assert not set(rec.info.get("optuna_attrs", {})) & set(trial.system_attrs)


def stage1_front_configs(store: MemoryStore, spec: dict, dims: list[str]) -> set[tuple]:
    trials = [asdict(t) for t in store.trials if t.stage == 1]
    front = brute_force_front(trials, spec)
    return {tuple(t["arch"][n] for n in dims) for t in trials if t["number"] in front}


@pytest.mark.parametrize("strategy", [
    {"name": "nsga2", "options": {"population_size": 4}},
    {"name": "surrogate", "options": {"n_initial": 2, "batch_size": 2, "opening_trials": 4}},
])
def test_stage_two_takes_the_front_configurations_whole(data_dir, strategy):
    # Stage 1 = (depth, op) at width 16. Its front holds 1-3 with conv and 1 with pool/skip, so
    # every depth and every op appear on it: limiting each dim to its front values would leave
    # all 9 (depth, op) pairs; whole configurations leave the front's pairs only.
    dims = ["depth", "op"]
    spec = two_stage_spec(stage1_dims=dims, stage1_fraction=0.5, budget={"trials": 20},
                          strategy=strategy)
    store = run(spec)
    configs = stage1_front_configs(store, spec, dims)
    summary = store.extra["stages"]
    assert summary["stage2_space"] == "front_configs"
    assert {(c["depth"], c["op"]) for c in summary["stage1_configs"]} == configs
    stage2 = [t for t in store.trials if t.stage == 2]
    assert len(stage2) == 10
    assert {(t.arch["depth"], t.arch["op"]) for t in stage2} <= configs
    assert len(configs) < len(summary["stage2_choices"]["depth"]) * len(
        summary["stage2_choices"]["op"])
    assert {t.arch["width"] for t in stage2} == {8, 16}  # stage 2 searches what stage 1 fixed
    if strategy["name"] == "surrogate":  # the surrogate itself chose stage-2 archs
        sources = {t.info.get("strategy", {}).get("source") for t in stage2}
        assert "surrogate" in sources
        measured = [t.arch_key for t in store.trials if "duplicate_of" not in t.info]
        assert len(measured) == len(set(measured))


def test_front_values_lets_stage_two_mix_the_front_values(data_dir):
    dims = ["depth", "op"]
    spec = two_stage_spec(stage1_dims=dims, stage1_fraction=0.5, budget={"trials": 20},
                          stage2_space="front_values")
    store = run(spec)
    choices = store.extra["stages"]["stage2_choices"]
    stage2 = [t for t in store.trials if t.stage == 2]
    assert all(t.arch["depth"] in choices["depth"] and t.arch["op"] in choices["op"]
               for t in stage2)
    # stage 1 finds the same front as in the test above; stage 2 strays off its pairs
    assert {(t.arch["depth"], t.arch["op"]) for t in stage2} - stage1_front_configs(
        store, spec, dims)


def test_an_unknown_stage_two_space_is_refused():
    with pytest.raises(ValidationError, match="stage2_space"):
        StudySpec.model_validate(two_stage_spec(stage2_space="everything"))


def test_seed_extremes_start_stage_one_at_both_ends_of_its_dims(data_dir):
    spec = two_stage_spec(stage1_dims=["depth", "op"], seed_extremes=True)
    store = run(spec)
    dims = resolve_spec(StudySpec.model_validate(spec)).space.dimensions()
    first, second = store.trials[0].arch, store.trials[1].arch
    assert (first["depth"], first["op"]) == (dims["depth"].choices[0], dims["op"].choices[0])
    assert (second["depth"], second["op"]) == (dims["depth"].choices[-1], dims["op"].choices[-1])
    assert first["width"] == second["width"] == LARGEST["width"]
    assert store.trials[0].stage == store.trials[1].stage == 1


def test_a_grouped_stage_space_draws_only_the_front_configurations():
    """Stage 2 in ``front_configs`` hands the surrogate a ``GroupedSpace``: the stage-1 dims as
    one dimension over the front's configurations (on a real grid space, RandLA-Net's)."""
    import numpy as np
    from optuna.distributions import CategoricalDistribution

    from search_spaces.base import Arch
    from search_spaces.randlanet.space import RandLANetSpace
    from service.engine.stages import STAGE1_CONFIG, GroupedSpace, StageView
    from surrogate.candidates import IndexedSpace, candidate_pool

    space = RandLANetSpace({"max_widths": [8, 16], "num_points": [128, 256, 512],
                            "ratios": [4, 2], "ks": [4, 8], "depths": [1, 2]})
    group, configs = ("num_points", "k_0"), ((128, 8), (512, 4))
    dists = {n: CategoricalDistribution(list(d.choices))
             for n, d in space.dimensions().items() if n not in group}
    dists[STAGE1_CONFIG] = CategoricalDistribution([0, 1])
    view = StageView(2, dists, group, configs)
    grouped = view.search_space(space)
    assert isinstance(grouped, GroupedSpace) and single_stage_view_space_is(space)
    ispace = IndexedSpace(grouped)
    others = [len(d.choices) for n, d in space.dimensions().items() if n not in group]
    everything = ispace.enumerate_all()
    assert len(everything) == len(set(everything)) == ispace.size == int(np.prod(others)) * 2

    def config(idx) -> tuple:
        arch = view.arch_params(ispace.params(idx))
        return tuple(arch[n] for n in group)

    assert {config(i) for i in everything} == set(configs)
    assert {config(i) for i in ispace.random(np.random.default_rng(0), 200)} == set(configs)
    start = everything[0]
    moves = ispace.neighbours(start)
    # the group moves as a whole: one move takes the other configuration, nothing in between
    assert sum(config(i) != config(start) for i in moves) == 1
    pool = candidate_pool(ispace, [start], exclude=set(), n_random=50,
                          rng=np.random.default_rng(1))
    assert {config(i) for i in pool} <= set(configs)
    first = ispace.params(start)  # encodings are the whole arch's
    np.testing.assert_array_equal(grouped.encode(first),
                                  space.encode(Arch(view.arch_params(first))))


def single_stage_view_space_is(space) -> bool:
    from service.engine.stages import single_stage_view

    return single_stage_view(space).search_space(space) is space
