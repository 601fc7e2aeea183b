"""The Ray backend on a real local Ray (2 CPUs): same trials as the local backend for a fixed
seed, parallel trials persisted exactly once, resume, cancel, device resources."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import select

from evaluators.profilers.devices import DEFAULT_DEVICES, DeviceCatalog
from service.engine.backends.ray_backend import RayExecutor, RayOptions, trial_resources
from service.engine.resolve import resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from service.interfaces.worker import Worker
from service.persistence.db import Database
from service.persistence.models import Study, Trial
from service.persistence.queue import claim_study
from service.persistence.store import DbStore
from service.settings import Settings
from tests.conftest import table_spec
from tests.search_spaces.test_table import write_table
from tests.service.helpers import brute_force_front, cancel_once_complete

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """One local Ray for the module (start-up costs seconds); its workers see the data dir."""
    root = tmp_path_factory.mktemp("raydata")
    write_table(root / "t.csv")
    old = os.environ.get("PARETONAS_DATA_DIRS")
    os.environ["PARETONAS_DATA_DIRS"] = str(root)
    ray.init(num_cpus=2, resources={"gap8": 1}, include_dashboard=False,
             logging_level="WARNING", log_to_driver=False,
             runtime_env={"env_vars": {"PARETONAS_DATA_DIRS": str(root)}})
    yield root
    ray.shutdown()
    if old is None:
        os.environ.pop("PARETONAS_DATA_DIRS", None)
    else:
        os.environ["PARETONAS_DATA_DIRS"] = old


def new_db(tmp_path, name: str) -> Database:
    return Database(f"sqlite:///{tmp_path / name}")


def submit(db: Database, spec: dict) -> int:
    from service.persistence import crud

    with db.session() as s:
        return crud.create_study(s, resolved=resolve_spec(StudySpec.model_validate(spec))).id


def trials(db: Database, study_id: int) -> list[Trial]:
    with db.session() as s:
        return list(s.scalars(select(Trial).where(Trial.study_id == study_id)
                              .order_by(Trial.number)).all())


def study_row(db: Database, study_id: int) -> Study:
    with db.session() as s:
        return s.get(Study, study_id)


STRATEGIES = {
    "nsga2": {"name": "nsga2", "options": {"population_size": 6}},
    "surrogate": {"name": "surrogate", "options": {"n_initial": 4, "batch_size": 3,
                                                   "n_random": 50, "generations": 1}},
}


@pytest.mark.parametrize("strategy", [*sorted(STRATEGIES), "nsga2-two-stage"])
def test_ray_and_local_backends_give_the_same_trials(ray_cluster, tmp_path, strategy):
    spec = table_spec(strategy=STRATEGIES[strategy.split("-")[0]], budget={"trials": 16},
                      seed=7)
    if strategy.endswith("two-stage"):  # stage 2 asks for stage 1's front configurations
        spec.update(stages=2, stage1_dims=["depth", "op"], stage1_fraction=0.5)
    runs = {}
    for backend in ("local", "ray"):
        db = new_db(tmp_path, f"{backend}.db")
        sid = submit(db, {**spec, "backend": backend})
        Worker(db, Settings(database_url=db.url), worker_id=backend).run_once()
        assert study_row(db, sid).status == "completed", study_row(db, sid).error
        runs[backend] = trials(db, sid)
        db.dispose()
    local, on_ray = runs["local"], runs["ray"]
    assert len(local) == len(on_ray) == 16
    for a, b in zip(local, on_ray, strict=True):
        assert (a.number, a.arch, a.values, a.state, a.on_front) == \
               (b.number, b.arch, b.values, b.state, b.on_front)
    assert all("ray" in t.info for t in on_ray if "duplicate_of" not in t.info)
    assert [t.stage for t in on_ray] == [t.stage for t in local]
    assert {t.stage for t in on_ray} == ({1, 2} if "stages" in spec else {1})


def test_paretonas_run_honours_the_ray_backend(ray_cluster):
    from service.engine.executors import LocalExecutor, make_executor
    from service.interfaces.commands.run import run_in_process

    spec = table_spec(strategy=STRATEGIES["nsga2"], budget={"trials": 6}, seed=3)
    on_ray = StudySpec.model_validate({**spec, "backend": "ray"})
    assert isinstance(make_executor(resolve_spec(on_ray)), RayExecutor)
    assert isinstance(make_executor(resolve_spec(StudySpec.model_validate(spec))), LocalExecutor)
    results = [run_in_process(StudySpec.model_validate({**spec, "backend": backend}),
                              progress=False) for backend in ("local", "ray")]
    assert results[1]["study"]["status"] == "completed"
    assert results[0]["trials"] == results[1]["trials"] and len(results[1]["trials"]) == 6


@pytest.mark.slow  # ~20 s of Tune on 2 shared cores
def test_parallel_trials_resume_a_study_exactly_once(ray_cluster, tmp_path):
    db = new_db(tmp_path, "par.db")
    spec = table_spec(strategy={"name": "tpe", "options": {"n_startup_trials": 4}},
                      budget={"trials": 20}, max_concurrency=2)
    sid = submit(db, spec)
    assert claim_study(db, "w", lease_seconds=60) == sid
    store = DbStore(db, sid, "w", lease_seconds=60)
    # a local worker ran 6 trials and died; the Ray backend resumes with 2 trials in flight
    StudyRunner(resolve_spec(StudySpec.model_validate({**spec, "budget": {"trials": 6}})),
                store, worker_id="w").run()
    resolved = resolve_spec(StudySpec.model_validate(spec))
    runner = StudyRunner(resolved, store, worker_id="w",
                         executor=RayExecutor(resolved, RayOptions(max_concurrency=2)))
    assert runner.run() == "completed"
    rows = trials(db, sid)
    assert [t.number for t in rows] == list(range(20))
    # a repeated arch takes its first trial's values in the driver: no Ray trial
    assert ["ray" in t.info for t in rows] == \
           [False] * 6 + ["duplicate_of" not in t.info for t in rows[6:]]
    as_dicts = [{"number": t.number, "arch_key": t.arch_key, "state": t.state,
                 "values": t.values} for t in rows]
    assert {t.number for t in rows if t.on_front} == brute_force_front(as_dicts, spec)
    study = study_row(db, sid)
    assert study.n_complete + study.n_failed == 20 and study.best_hypervolume > 0
    db.dispose()


@pytest.mark.slow
def test_cancel_is_honoured(ray_cluster, tmp_path):
    db = new_db(tmp_path, "cancel.db")
    sid = submit(db, table_spec(budget={"trials": 5000}, backend="ray", max_concurrency=2))
    settings = Settings(database_url=db.url, heartbeat_seconds=0.1)
    thread = threading.Thread(target=Worker(db, settings, worker_id="w").run_once)
    thread.start()
    cancel_once_complete(db, sid, thread, 3, timeout=120)
    study = study_row(db, sid)
    assert study.status == "cancelled" and 3 <= study.n_complete < 5000
    assert [t.number for t in trials(db, sid)] == list(range(study.n_complete + study.n_failed))
    db.dispose()


def test_device_trials_ask_for_the_device_resource():
    class Src:
        def __init__(self, kind, device=None):
            self.kind = kind
            self.ref = type("Ref", (), {"device": device})()

    class Study:
        sources = {"acc": Src("accuracy"), "latency_ms@gap8-sim": Src("device", "gap8-sim"),
                   "latency_ms@cpu": Src("device", "cpu")}
        spec = StudySpec.model_validate({  # compute on the CPU: no GPU asked for
            "name": "s", "search_space": {"name": "table"}, "budget": {"trials": 1},
            "objectives": [{"metric": "a", "direction": "maximize"},
                           {"metric": "b", "direction": "minimize"}],
            "compute": {"device": "cpu"}})
        devices = DeviceCatalog({"cpu": DEFAULT_DEVICES["cpu"],
                                 "gap8-sim": DEFAULT_DEVICES["gap8"]})

    opts = RayOptions(device_resources={"gap8-sim": "gap8"}, cpus_per_trial=0.5)
    assert trial_resources(Study(), opts) == {"cpu": 0.5, "gap8": 1.0}
    assert trial_resources(Study(), RayOptions()) == {"cpu": 1.0}


def test_trials_needing_a_resource_no_node_has_fail_at_once(ray_cluster):
    from service.engine.backends.ray_backend import UnschedulableError, check_schedulable

    check_schedulable({"cpu": 1.0, "gap8": 1.0})  # the module's Ray has one gap8 "board"
    with pytest.raises(UnschedulableError, match=r"gvsoc.*ray start --resources"):
        check_schedulable({"cpu": 1.0, "gvsoc": 1.0}, wait_s=0.5)
    with pytest.raises(UnschedulableError, match="cpu"):
        check_schedulable({"cpu": 3.0}, wait_s=0)


def test_backend_is_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'local' or 'ray'"):
        StudySpec.model_validate(table_spec(backend="spark"))
    with pytest.raises(ValidationError, match="max_concurrency"):
        StudySpec.model_validate(table_spec(max_concurrency=0))


def test_ray_client_addresses_are_refused_with_the_alternative(tmp_path):
    import subprocess
    import sys

    from service.engine.backends.ray_backend import check_address

    check_address("auto")
    check_address("head:6379")
    with pytest.raises(ValueError, match="ray start --address"):
        check_address("ray://head:10001")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARETONAS_")}
    env["PARETONAS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    for argv in (["--backend", "ray", "--address", "ray://head:10001"],
                 ["--address", "auto"]):  # an address without the ray backend
        r = subprocess.run([sys.executable, "-m", "service.interfaces.cli",
                            "worker", *argv], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
