"""Claims, leases and takeovers on a real database (SQLite; PostgreSQL when configured)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from service.engine.records import LeaseLost
from service.engine.resolve import resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from service.interfaces.worker import Worker
from service.persistence.db import Database, utcnow
from service.persistence.models import Study, Trial
from service.persistence.queue import claim_study, finish_study, renew_lease
from service.persistence.store import DbStore
from service.settings import Settings
from tests.conftest import table_spec
from tests.service.helpers import cancel_once_complete


@pytest.fixture
def db(database_url, data_dir):
    db = Database(database_url)
    yield db
    db.dispose()


def add_studies(db: Database, n: int, **spec_overrides) -> list[int]:
    from service.persistence import crud

    ids = []
    with db.session() as s:
        for i in range(n):
            spec = StudySpec.model_validate(table_spec(name=f"s{i}", **spec_overrides))
            ids.append(crud.create_study(s, resolved=resolve_spec(spec)).id)
    return ids


def expire_lease(db: Database, study_id: int) -> None:
    """Move a study's lease expiry into the past, as if its owner had stopped heartbeating.

    A short real lease (say 0.2 s) makes the "still leased" check race the clock on a loaded
    CI machine; setting the expiry directly tests the same takeover rule deterministically."""
    with db.session() as s:
        study = s.get(Study, study_id)
        study.lease_expires_at = utcnow() - dt.timedelta(seconds=1)
        s.commit()


def test_concurrent_claims_never_give_one_study_to_two_workers(db):
    ids = add_studies(db, 12)
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def claim_all(worker: str) -> None:
        got = claimed.setdefault(worker, [])
        start.wait()
        while True:
            sid = claim_study(db, worker, lease_seconds=60)
            if sid is None:
                with db.session() as s:
                    if not s.query(Study).filter(Study.status == "queued").count():
                        return
                continue
            got.append(sid)

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    all_claims = [sid for got in claimed.values() for sid in got]
    assert sorted(all_claims) == ids, claimed


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_write(db):
    (sid,) = add_studies(db, 1, budget={"trials": 10})
    assert claim_study(db, "old", lease_seconds=60) == sid
    assert claim_study(db, "new", lease_seconds=60) is None  # still leased
    expire_lease(db, sid)  # the old owner stalls past its lease, without racing a wall clock
    assert claim_study(db, "new", lease_seconds=60) == sid
    assert renew_lease(db, sid, "old", lease_seconds=60) == (False, False)
    assert not finish_study(db, sid, "old", status="completed")

    spec = StudySpec.model_validate(table_spec(budget={"trials": 10}))
    zombie = DbStore(db, sid, "old", lease_seconds=60)
    with pytest.raises(LeaseLost):
        StudyRunner(resolve_spec(spec), zombie, worker_id="old").run()
    with db.session() as s:
        assert s.get(Study, sid).n_complete == 0


def test_a_study_resumed_by_another_worker_has_exact_trials(db):
    (sid,) = add_studies(db, 1, budget={"trials": 30})
    spec = StudySpec.model_validate(table_spec(budget={"trials": 30}))
    assert claim_study(db, "first", lease_seconds=60) == sid
    # the first worker runs 11 trials, then "dies" (stops without finishing the study)
    partial = StudySpec.model_validate(table_spec(budget={"trials": 11}))
    StudyRunner(resolve_spec(partial), DbStore(db, sid, "first", lease_seconds=60),
                worker_id="first").run()
    expire_lease(db, sid)
    settings = Settings(database_url=db.url, lease_seconds=60)
    assert Worker(db, settings, worker_id="second").run_once() == sid
    with db.session() as s:
        study = s.get(Study, sid)
        assert study.status == "completed" and study.n_finished == spec.budget.trials
    with db.session() as s:
        rows = s.scalars(select(Trial).where(Trial.study_id == sid)).all()
        assert sorted(r.number for r in rows) == list(range(30))
        assert {r.worker for r in rows} == {"first", "second"}


def test_cancel_stops_a_running_study_after_the_current_trial(db):
    (sid,) = add_studies(db, 1, budget={"trials": 100_000})
    settings = Settings(database_url=db.url, heartbeat_seconds=0.05)
    worker = Worker(db, settings, worker_id="w")
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    cancel_once_complete(db, sid, thread, 5, timeout=30)
    with db.session() as s:
        study = s.get(Study, sid)
        assert study.status == "cancelled" and 5 <= study.n_finished < 100_000
