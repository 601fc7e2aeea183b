"""Faults with real `paretonas worker` processes: SIGKILL mid-study, PostgreSQL restarted
mid-study, 8 workers racing for 20 studies. No trial may be lost or duplicated."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from service.engine.resolve import resolve_spec
from service.engine.spec import StudySpec
from service.persistence import crud
from service.persistence.db import Database
from service.persistence.models import Study, Trial
from tests.conftest import PG_URL, fresh_postgres_database, table_spec
from tests.service.helpers import brute_force_front

ROOT = Path(__file__).resolve().parents[2]
needs_postgres = pytest.mark.skipif(not PG_URL, reason="PARETONAS_TEST_DATABASE_URL not set")


@pytest.fixture
def db(database_url, data_dir) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def submit(db: Database, n: int = 1, **overrides) -> list[int]:
    """Queue ``n`` table studies."""
    with db.session() as s:
        return [crud.create_study(s, resolved=resolve_spec(StudySpec.model_validate(
            table_spec(name=f"s{i}", **overrides)))).id for i in range(n)]


def worker_env(db: Database, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARETONAS_")}
    env.update(PARETONAS_DATABASE_URL=db.url, PARETONAS_DATA_DIRS=str(data_dir),
               PARETONAS_LEASE_SECONDS="3", PARETONAS_HEARTBEAT_SECONDS="0.5",
               PARETONAS_POLL_SECONDS="0.2", OMP_NUM_THREADS="1")
    return env


@contextmanager
def workers(env: dict[str, str], *extra: str, n: int = 1) -> Iterator[list[subprocess.Popen]]:
    """Start ``n`` real worker processes; always stop them (SIGTERM, then SIGKILL)."""
    log = tempfile.TemporaryFile()  # a pipe nobody reads could fill up and block a worker
    procs = [subprocess.Popen([sys.executable, "-m", "service.interfaces.cli",
                               "worker", *extra], env=env,
                              cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
             for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        log.close()


def study(db: Database, sid: int) -> Study:
    with db.session() as s:
        return s.get(Study, sid)


def wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def assert_exact(db: Database, sid: int, budget: int, spec: dict) -> list[Trial]:
    """Completed, every number once, counters match the rows, the front is the true one."""
    s = study(db, sid)
    assert s.status == "completed", (s.status, s.error)
    with db.session() as session:
        rows = list(session.scalars(select(Trial).where(Trial.study_id == sid)
                                    .order_by(Trial.number)).all())
    assert [t.number for t in rows] == list(range(budget))
    assert s.n_complete + s.n_failed == budget
    assert s.n_complete == sum(t.state == "complete" for t in rows)
    dicts = [{"number": t.number, "arch_key": t.arch_key, "state": t.state, "values": t.values}
             for t in rows]
    assert {t.number for t in rows if t.on_front} == brute_force_front(dicts, spec)
    return rows


@pytest.mark.slow  # a local Ray starts inside the killed worker: ~1 minute
def test_a_ray_driver_killed_with_trials_in_flight_loses_and_repeats_nothing(db, data_dir):
    """tests/service/test_worker_kill.py kills a local worker; here the killed worker drives Ray
    Tune with two trials in flight, and a plain worker resumes the study (on Ray, as it asks)."""
    budget = 40
    spec = table_spec(budget={"trials": budget}, backend="ray", max_concurrency=2)
    (sid,) = submit(db, budget={"trials": budget}, backend="ray", max_concurrency=2)
    env = worker_env(db, data_dir)
    with workers(env, "--backend", "ray") as (driver,):
        wait_for(lambda: study(db, sid).n_complete >= 4, timeout=240, what="4 Ray trials")
        os.killpg(driver.pid, signal.SIGKILL)  # the driver, its Ray and the trials in flight
        driver.wait(10)
    done_by_ray = study(db, sid).n_complete + study(db, sid).n_failed
    assert done_by_ray < budget, "the study finished before the kill"
    with workers(env):
        wait_for(lambda: study(db, sid).status == "completed", timeout=180,
                 what="the study to be resumed and completed")
    rows = assert_exact(db, sid, budget, spec)
    assert all("ray" in t.info for t in rows if "duplicate_of" not in t.info)
    owners = [t.worker for t in rows]
    assert len(set(owners)) == 2 and owners.index(owners[-1]) == done_by_ray


@pytest.fixture
def restartable_pg(data_dir) -> Iterator[str]:
    """A fresh PostgreSQL database whose clean-up survives a server restart (pre-ping)."""
    with fresh_postgres_database("paretonas_restart") as url:
        yield url


@needs_postgres
@pytest.mark.slow  # ~30 s, and it restarts the machine's PostgreSQL under everyone's feet
@pytest.mark.skipif(not shutil.which("pg_ctlcluster"), reason="needs pg_ctlcluster (Debian)")
def test_postgres_restarted_mid_study(restartable_pg, data_dir):
    db = Database(restartable_pg)
    budget = 600
    sids = submit(db, 2, budget={"trials": budget})
    try:
        with workers(worker_env(db, data_dir), n=2):
            wait_for(lambda: all(study(db, s).n_complete >= 30 for s in sids), timeout=120,
                     what="both studies to be under way")
            subprocess.run(["pg_ctlcluster", "15", "main", "restart"], check=True, timeout=60)
            db.dispose()  # our own pooled connections died with the server
            assert any(study(db, s).status == "running" for s in sids), "restarted too late"
            wait_for(lambda: all(study(db, s).status == "completed" for s in sids),
                     timeout=240, what="both studies to complete after the restart")
        for sid in sids:
            assert_exact(db, sid, budget, table_spec(budget={"trials": budget}))
    finally:
        db.dispose()


@needs_postgres
@pytest.mark.slow  # 8 fresh interpreters importing torch on a small machine: 1-2 minutes
def test_eight_workers_run_twenty_studies_exactly_once(database_url, data_dir):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    db = Database(database_url)
    budget = 12
    sids = submit(db, 20, budget={"trials": budget})
    try:
        env = worker_env(db, data_dir)
        env["PARETONAS_LEASE_SECONDS"] = "60"  # no takeovers: each study must run once
        with workers(env, "--concurrency", "8", "--exit-when-idle") as (parent,):
            parent.wait(300)
            assert parent.returncode == 0
        owners: dict[str, int] = {}
        for sid in sids:
            rows = assert_exact(db, sid, budget, table_spec(budget={"trials": budget}))
            runners = {t.worker for t in rows}
            assert len(runners) == 1, f"study {sid} ran on {runners}"
            owner = runners.pop()
            owners[owner] = owners.get(owner, 0) + 1
        assert len(owners) >= 2, "the studies were not shared between workers"
    finally:
        db.dispose()
