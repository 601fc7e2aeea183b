"""Keyword-only database operations behind the API routes."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import utcnow
from service.models import HypervolumePoint, Study, Trial
from service.resolve import ResolvedStudy
from service.schemas import ObjectivePublic, StudyPublic, TrialPublic
from service.spec import metric_key


def create_study(session: Session, *, resolved: ResolvedStudy) -> Study:
    spec = resolved.spec
    study = Study(
        name=spec.name, search_space=spec.search_space.name,
        spec=spec.model_dump(mode="json"), status="queued", n_trials=spec.budget.trials,
        extra={"units": {k: s.unit for k, s in resolved.sources.items()}},
    )
    session.add(study)
    session.commit()
    session.refresh(study)
    return study


def list_studies(
    session: Session, *, status: str | None, offset: int, limit: int
) -> tuple[list[Study], int]:
    q = select(Study)
    if status:
        q = q.where(Study.status == status)
    count = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(Study.id.desc()).offset(offset).limit(limit)).all()
    return list(rows), count


def cancel_study(session: Session, *, study: Study) -> Study:
    """Queued: cancelled at once. Running: the worker stops after the current trial."""
    if study.status == "queued":
        study.status, study.finished_at = "cancelled", utcnow()
    if study.status in ("queued", "running", "cancelled"):
        study.cancel_requested = True
    session.commit()
    session.refresh(study)
    return study


def list_trials(
    session: Session, *, study_id: int, offset: int, limit: int, after: int | None,
    state: str | None, on_front: bool | None = None, descending: bool = False,
) -> tuple[list[Trial], int]:
    q = select(Trial).where(Trial.study_id == study_id)
    if after is not None:
        q = q.where(Trial.number > after)
    if state:
        q = q.where(Trial.state == state)
    if on_front is not None:
        q = q.where(Trial.on_front.is_(on_front))
    count = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    order = Trial.number.desc() if descending else Trial.number
    rows = session.scalars(q.order_by(order).offset(offset).limit(limit)).all()
    return list(rows), count


def hypervolume_history(session: Session, *, study_id: int) -> list[HypervolumePoint]:
    return list(
        session.scalars(
            select(HypervolumePoint)
            .where(HypervolumePoint.study_id == study_id)
            .order_by(HypervolumePoint.trial_number)
        ).all()
    )


def objectives_of(study: Study) -> list[ObjectivePublic]:
    units = (study.extra or {}).get("units", {})
    out = []
    for o in study.spec["objectives"]:
        key = metric_key(o["metric"], o.get("device"))
        out.append(ObjectivePublic(key=key, metric=o["metric"], device=o.get("device"),
                                   direction=o["direction"], unit=units.get(key, "")))
    return out


def study_public(study: Study) -> StudyPublic:
    return StudyPublic(
        id=study.id, name=study.name, status=study.status, search_space=study.search_space,
        spec=study.spec, objectives=objectives_of(study), n_trials=study.n_trials,
        n_complete=study.n_complete, n_failed=study.n_failed, progress=study.progress,
        best_hypervolume=study.best_hypervolume, reference_point=study.reference_point,
        error=study.error, extra=study.extra or {}, cancel_requested=study.cancel_requested,
        worker=study.lease_owner, created_at=study.created_at, started_at=study.started_at,
        finished_at=study.finished_at, updated_at=study.updated_at,
    )


def trial_public(t: Trial) -> TrialPublic:
    return TrialPublic(
        number=t.number, arch=t.arch, arch_key=t.arch_key, values=t.values, state=t.state,
        on_front=t.on_front, stage=t.stage, worker=t.worker, duration_s=t.duration_s,
        error=t.error, info=t.info, started_at=t.started_at, finished_at=t.finished_at,
    )


def trials_csv(trials: Sequence[Trial], objective_keys: list[str]) -> str:
    dims = sorted({k for t in trials for k in t.arch})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["number", "state", "on_front", *dims, *objective_keys])
    for t in trials:
        writer.writerow([t.number, t.state, t.on_front, *(t.arch.get(d) for d in dims),
                         *(t.values.get(k) for k in objective_keys)])
    return buf.getvalue()
