"""The database-backed ``TrialStore`` of one claimed study.

``save_trial`` runs in one transaction that first checks this worker still holds the lease, so a
worker whose lease expired cannot write, and a trial is either fully recorded (row, front flags,
hypervolume, counters) or not at all. The (study, number) unique key makes a duplicate impossible.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from service.engine.clock import utcnow
from service.engine.records import FrontUpdate, LeaseLost, Observers, TrialRecord
from service.persistence.db import Database
from service.persistence.models import HypervolumePoint, Study, Trial


def record_from_row(row: Trial) -> TrialRecord:
    return TrialRecord(
        number=row.number, arch=row.arch, arch_key=row.arch_key, values=row.values,
        state=row.state, started_at=row.started_at, finished_at=row.finished_at,
        duration_s=row.duration_s, stage=row.stage, worker=row.worker, error=row.error,
        info=row.info, on_front=row.on_front,
    )


class DbStore(Observers):
    """``TrialStore`` on the database, for the worker holding the study's lease."""

    def __init__(self, db: Database, study_id: int, worker_id: str, *, lease_seconds: float,
                 shutdown: threading.Event | None = None):
        self.db = db
        self.study_id = study_id
        self.worker_id = worker_id
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.cancel_requested = threading.Event()
        #: the worker is stopping (SIGTERM, server gone): end after the current trial too
        self.shutdown = shutdown or threading.Event()
        self.lease_lost = threading.Event()
        with db.session() as s:
            study = s.get(Study, study_id)
            self.reference_point: list[float] | None = study.reference_point if study else None

    def load_trials(self) -> list[TrialRecord]:
        with self.db.session() as s:
            rows = s.scalars(
                select(Trial).where(Trial.study_id == self.study_id).order_by(Trial.number)
            ).all()
            return [record_from_row(r) for r in rows]

    def check_lease(self) -> None:
        with self.db.engine.connect() as conn:
            self._check_lease(conn)

    def _check_lease(self, conn) -> bool:
        """Lock the study row (PostgreSQL), check we still own it; returns cancel_requested."""
        q = select(Study.lease_owner, Study.cancel_requested).where(Study.id == self.study_id)
        if self.db.is_postgres:
            q = q.with_for_update()
        owner, cancel = conn.execute(q).one()
        if owner != self.worker_id:
            self.lease_lost.set()
            raise LeaseLost(f"study {self.study_id} is now owned by {owner}")
        return bool(cancel)

    def _study_changes(self, upd: FrontUpdate) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if upd.reference_point is not None:
            changes["reference_point"] = upd.reference_point
            self.reference_point = upd.reference_point
        if upd.best_hypervolume is not None:
            changes["best_hypervolume"] = upd.best_hypervolume
        return changes

    def _insert_hypervolume(self, conn, upd: FrontUpdate) -> None:
        if upd.hypervolume:
            conn.execute(insert(HypervolumePoint), [
                {"study_id": self.study_id, "trial_number": n, "hypervolume": hv}
                for n, hv in upd.hypervolume
            ])

    def save_trial(self, record: TrialRecord, upd: FrontUpdate) -> None:
        # SQLAlchemy Core, not ORM units of work: this runs once per trial (hot path).
        now = utcnow()
        try:
            with self.db.engine.begin() as conn:
                if self._check_lease(conn):
                    self.cancel_requested.set()
                conn.execute(insert(Trial).values(
                    study_id=self.study_id, number=record.number, arch=record.arch,
                    arch_key=record.arch_key, values=record.values, state=record.state,
                    on_front=record.on_front, stage=record.stage, worker=record.worker,
                    duration_s=record.duration_s, error=record.error, info=record.info,
                    started_at=record.started_at, finished_at=record.finished_at,
                ))
                if upd.left_front:
                    conn.execute(
                        update(Trial)
                        .where(Trial.study_id == self.study_id, Trial.number.in_(upd.left_front))
                        .values(on_front=False)
                    )
                self._insert_hypervolume(conn, upd)
                counter = "n_complete" if record.state == "complete" else "n_failed"
                conn.execute(
                    update(Study).where(Study.id == self.study_id).values(
                        heartbeat_at=now, updated_at=now,
                        lease_expires_at=now + self.lease,  # a finished trial is a heartbeat
                        **{counter: getattr(Study, counter) + 1},
                        **self._study_changes(upd),
                    )
                )
        except IntegrityError as exc:  # another worker wrote this number: we lost the study
            self.lease_lost.set()
            raise LeaseLost(f"trial {record.number} of study {self.study_id} exists") from exc
        self.notify(record)

    def update_trials(self, records: Sequence[TrialRecord], *,
                      best_hypervolume: float | None) -> None:
        with self.db.engine.begin() as conn:
            self._check_lease(conn)  # a worker that lost the study must not write
            for r in records:
                conn.execute(
                    update(Trial)
                    .where(Trial.study_id == self.study_id, Trial.number == r.number)
                    .values(values=r.values, info=r.info, on_front=r.on_front)
                )
            if best_hypervolume is not None:
                conn.execute(update(Study).where(Study.id == self.study_id)
                             .values(best_hypervolume=best_hypervolume, updated_at=utcnow()))

    def save_reference(self, upd: FrontUpdate) -> None:
        with self.db.engine.begin() as conn:
            self._check_lease(conn)
            self._insert_hypervolume(conn, upd)
            conn.execute(update(Study).where(Study.id == self.study_id)
                         .values(updated_at=utcnow(), **self._study_changes(upd)))

    def should_stop(self) -> bool:
        if self.lease_lost.is_set():
            raise LeaseLost(f"lease on study {self.study_id} lost")
        return self.cancel_requested.is_set() or self.shutdown.is_set()

    def set_extra(self, key: str, value: Any) -> None:
        with self.db.session() as s, s.begin():
            self._check_lease(s.connection())
            study = s.get(Study, self.study_id)
            study.extra = {**(study.extra or {}), key: value}
