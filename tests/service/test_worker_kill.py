"""A real ``paretonas worker`` process killed with SIGKILL mid-study; another one resumes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from service.engine.resolve import resolve_spec
from service.engine.spec import StudySpec
from service.persistence import crud
from service.persistence.db import Database
from service.persistence.models import Study, Trial
from tests.conftest import table_spec
from tests.service.helpers import brute_force_front

BUDGET = 600


def start_worker(database_url: str, data_dir) -> subprocess.Popen:
    env = {**os.environ, "PARETONAS_DATABASE_URL": database_url,
           "PARETONAS_DATA_DIRS": str(data_dir), "PARETONAS_LEASE_SECONDS": "1",
           "PARETONAS_HEARTBEAT_SECONDS": "0.2", "PARETONAS_POLL_SECONDS": "0.1"}
    return subprocess.Popen([sys.executable, "-m", "service.interfaces.cli",
                             "worker", "--exit-when-idle"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finished(db: Database, sid: int) -> int:
    with db.session() as s:
        return s.get(Study, sid).n_finished


def test_sigkill_mid_study_loses_and_duplicates_nothing(database_url, data_dir):
    db = Database(database_url)
    spec = table_spec(budget={"trials": BUDGET}, strategy={"name": "random"})
    with db.session() as s:
        sid = crud.create_study(s, resolved=resolve_spec(StudySpec.model_validate(spec))).id

    first = start_worker(database_url, data_dir)
    deadline = time.monotonic() + 120
    while finished(db, sid) < 20 and time.monotonic() < deadline:
        assert first.poll() is None, first.stderr.read().decode()
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = finished(db, sid)
    assert 20 <= killed_at < BUDGET, "the study must be interrupted mid-way"

    # the dead worker's lease (1 s) must run out first: a worker that starts faster finds
    # nothing to claim and, with --exit-when-idle, exits at once
    time.sleep(1.2)
    second = start_worker(database_url, data_dir)
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()

    with db.session() as s:
        study = s.get(Study, sid)
        rows = s.scalars(select(Trial).where(Trial.study_id == sid)).all()
        trials = [{"number": t.number, "arch_key": t.arch_key, "state": t.state,
                   "values": t.values} for t in rows]
        front = {t.number for t in rows if t.on_front}
        workers = {t.worker for t in rows}
        assert study.status == "completed", study.error
    assert study.n_finished == BUDGET
    assert sorted(t["number"] for t in trials) == list(range(BUDGET))
    assert len(workers) == 2, "both workers wrote trials"
    assert front == brute_force_front(trials, spec)
    db.dispose()
