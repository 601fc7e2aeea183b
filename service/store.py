"""The database-backed ``TrialStore`` of one claimed study.

``save_trial`` runs in one transaction that first checks this worker still holds the lease, so a
worker whose lease expired cannot write, and a trial is either fully recorded (row, front flags,
hypervolume, counters) or not at all. The (study, number) unique key makes a duplicate impossible.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from service.db import Database, utcnow
from service.models import HypervolumePoint, Study, Trial
from service.records import FrontUpdate, LeaseLost, TrialRecord


def record_from_row(row: Trial) -> TrialRecord:
    return TrialRecord(
        number=row.number, arch=row.arch, arch_key=row.arch_key, values=row.values,
        state=row.state, started_at=row.started_at, finished_at=row.finished_at,
        duration_s=row.duration_s, stage=row.stage, worker=row.worker, error=row.error,
        info=row.info, on_front=row.on_front,
    )


class DbStore:
    def __init__(self, db: Database, study_id: int, worker_id: str, *, lease_seconds: float):
        self.db = db
        self.study_id = study_id
        self.worker_id = worker_id
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.cancel_requested = threading.Event()
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

    def _locked_study(self, s) -> Study:
        """The study row, locked on PostgreSQL, after checking we still own it."""
        q = select(Study).where(Study.id == self.study_id)
        if self.db.is_postgres:
            q = q.with_for_update()
        study = s.scalars(q).one()
        if study.lease_owner != self.worker_id:
            self.lease_lost.set()
            raise LeaseLost(f"study {self.study_id} is now owned by {study.lease_owner}")
        return study

    def _apply_update(self, s, study: Study, upd: FrontUpdate) -> None:
        for number, hv in upd.hypervolume:
            s.merge(HypervolumePoint(study_id=self.study_id, trial_number=number, hypervolume=hv))
        if upd.reference_point is not None:
            study.reference_point = upd.reference_point
            self.reference_point = upd.reference_point
        if upd.best_hypervolume is not None:
            study.best_hypervolume = upd.best_hypervolume

    def save_trial(self, record: TrialRecord, upd: FrontUpdate) -> None:
        try:
            with self.db.session() as s, s.begin():
                study = self._locked_study(s)
                s.add(Trial(
                    study_id=self.study_id, number=record.number, arch=record.arch,
                    arch_key=record.arch_key, values=record.values, state=record.state,
                    on_front=record.on_front, stage=record.stage, worker=record.worker,
                    duration_s=record.duration_s, error=record.error, info=record.info,
                    started_at=record.started_at, finished_at=record.finished_at,
                ))
                if upd.left_front:
                    s.execute(
                        update(Trial)
                        .where(Trial.study_id == self.study_id, Trial.number.in_(upd.left_front))
                        .values(on_front=False)
                    )
                self._apply_update(s, study, upd)
                if record.state == "complete":
                    study.n_complete += 1
                else:
                    study.n_failed += 1
                now = utcnow()  # a finished trial doubles as a heartbeat
                study.heartbeat_at, study.lease_expires_at = now, now + self.lease
                if study.cancel_requested:
                    self.cancel_requested.set()
        except IntegrityError as exc:  # another worker wrote this number: we lost the study
            self.lease_lost.set()
            raise LeaseLost(f"trial {record.number} of study {self.study_id} exists") from exc

    def save_reference(self, upd: FrontUpdate) -> None:
        with self.db.session() as s, s.begin():
            self._apply_update(s, self._locked_study(s), upd)

    def should_stop(self) -> bool:
        if self.lease_lost.is_set():
            raise LeaseLost(f"lease on study {self.study_id} lost")
        return self.cancel_requested.is_set()

    def set_extra(self, key: str, value: Any) -> None:
        with self.db.session() as s, s.begin():
            study = self._locked_study(s)
            study.extra = {**(study.extra or {}), key: value}
