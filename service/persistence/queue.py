"""The study queue: claim with a lease, renew it with heartbeats, release when done.

A claim is a conditional UPDATE (compare-and-set on status/lease), so two workers can never both
win a study, on SQLite or PostgreSQL; on PostgreSQL the candidate row is also picked with
``FOR UPDATE SKIP LOCKED`` so concurrent workers don't queue behind one another.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, or_, select, update

from service.persistence.db import Database, utcnow
from service.persistence.models import Study


def _claimable(now: dt.datetime):
    return or_(
        and_(Study.status == "queued", Study.cancel_requested.is_(False)),
        and_(Study.status == "running", Study.lease_expires_at < now),
    )


def claim_study(db: Database, worker_id: str, *, lease_seconds: float) -> int | None:
    """Claim the oldest queued study (or one whose worker's lease expired); return its id."""
    now = utcnow()
    with db.session() as s, s.begin():
        q = select(Study.id).where(_claimable(now)).order_by(Study.id).limit(1)
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True)
        study_id = s.scalar(q)
        if study_id is None:
            return None
        result = s.execute(
            update(Study)
            .where(Study.id == study_id, _claimable(now))
            .values(
                status="running", lease_owner=worker_id, heartbeat_at=now,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                started_at=func.coalesce(Study.started_at, now), updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return study_id if result.rowcount == 1 else None


def renew_lease(
    db: Database, study_id: int, worker_id: str, *, lease_seconds: float
) -> tuple[bool, bool]:
    """Extend our lease; returns (still ours, cancel requested)."""
    now = utcnow()
    with db.session() as s, s.begin():
        result = s.execute(
            update(Study)
            .where(Study.id == study_id, Study.lease_owner == worker_id,
                   Study.status == "running")
            .values(heartbeat_at=now, lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False, False
        cancel = s.scalar(select(Study.cancel_requested).where(Study.id == study_id))
        return True, bool(cancel)


def finish_study(
    db: Database, study_id: int, worker_id: str, *, status: str, error: str | None = None
) -> bool:
    """Mark the study finished if we still own it."""
    now = utcnow()
    with db.session() as s, s.begin():
        result = s.execute(
            update(Study)
            .where(Study.id == study_id, Study.lease_owner == worker_id)
            .values(status=status, error=error, finished_at=now, updated_at=now,
                    lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def release_study(db: Database, study_id: int, worker_id: str) -> bool:
    """Give a running study back to the queue at once (a worker shutting down): the next
    worker claims it without waiting for the lease to expire and resumes from its trials."""
    now = utcnow()
    with db.session() as s, s.begin():
        result = s.execute(
            update(Study)
            .where(Study.id == study_id, Study.lease_owner == worker_id,
                   Study.status == "running")
            .values(status="queued", lease_owner=None, lease_expires_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1
