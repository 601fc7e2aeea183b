"""Keyword-only database operations behind the API routes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from service.engine import problem_hv
from service.engine.front import FrontTracker
from service.engine.lifecycle import FINISHED
from service.engine.resolve import ResolvedStudy
from service.engine.spec import StudySpec, metric_key
from service.persistence.db import utcnow
from service.persistence.models import HypervolumePoint, Study, Trial


def create_study(
    session: Session, *, resolved: ResolvedStudy, warnings: list[dict[str, str]] | None = None,
    idempotency_key: str | None = None, spec_hash: str | None = None,
    problem_reference: dict | None = None,
) -> Study:
    spec = resolved.spec
    extra: dict = {"units": {k: s.unit for k, s in resolved.sources.items()}}
    if problem_reference is not None:
        extra["problem_reference"] = problem_reference
    if warnings:
        extra["warnings"] = warnings
    study = Study(
        name=spec.name, search_space=spec.search_space.name,
        spec=spec.model_dump(mode="json"), status="queued", n_trials=spec.budget.trials,
        extra=extra, idempotency_key=idempotency_key, spec_hash=spec_hash, tags=[], notes="",
    )
    session.add(study)
    session.commit()
    session.refresh(study)
    return study


def study_by_idempotency_key(session: Session, key: str) -> Study | None:
    return session.scalar(select(Study).where(Study.idempotency_key == key))


def same_spec_studies(session: Session, spec_hash: str, *, limit: int = 5) -> list[Study]:
    """Earlier studies of the same search (spec without name and budget), newest first."""
    return list(session.scalars(select(Study).where(Study.spec_hash == spec_hash)
                                .order_by(Study.id.desc()).limit(limit)).all())


def update_study(session: Session, *, study: Study, changes: dict) -> Study:
    """Rename, re-tag or annotate; ``changes`` holds only the fields to set."""
    for field, value in changes.items():
        setattr(study, field, value)
    session.commit()
    session.refresh(study)
    return study


def delete_study(session: Session, *, study_id: int) -> bool:
    """Delete a study that no worker is running, with its trials and hypervolume history, in
    one transaction; False if it is running (the check and the delete are one statement, so a
    worker claiming it at the same moment cannot lose its rows underneath)."""
    gone = session.execute(
        delete(Study).where(Study.id == study_id, Study.status != "running")
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if gone:  # the foreign keys cascade too; explicit, so no backend setting is relied on
        session.execute(delete(Trial).where(Trial.study_id == study_id))
        session.execute(delete(HypervolumePoint).where(HypervolumePoint.study_id == study_id))
    session.commit()
    return gone


def resume_study(session: Session, *, study: Study, spec: dict) -> bool:
    """Queue a finished study again under ``spec`` (its new budget); False if it is not
    finished any more (a concurrent resume won)."""
    now = utcnow()
    extra = {k: v for k, v in (study.extra or {}).items() if k != "no_feasible"}
    done = session.execute(
        update(Study).where(Study.id == study.id, Study.status.in_(FINISHED))
        .values(spec=spec, n_trials=spec["budget"]["trials"], status="queued", error=None,
                cancel_requested=False, finished_at=None, updated_at=now, extra=extra)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.commit()
    if done:
        session.refresh(study)
    return done


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


def last_trial_number(session: Session, *, study_id: int) -> int | None:
    return session.scalar(select(func.max(Trial.number)).where(Trial.study_id == study_id))


def problem_hypervolume_history(session: Session, *, study: Study) -> list[tuple[int, float]]:
    """The normalised hypervolume curve, recomputed from the trials in order (empty without a
    problem reference). The trials that may enter the front are those of the study's own
    front tracker: complete, feasible, first of their arch, measured unless allowed."""
    ref = (study.extra or {}).get("problem_reference")
    if not problem_hv.usable(ref):
        return []
    spec = StudySpec.model_validate(study.spec)
    tracker = FrontTracker(spec)
    rows = session.execute(
        select(Trial.number, Trial.values, Trial.state, Trial.info)
        .where(Trial.study_id == study.id, Trial.state == "complete").order_by(Trial.number)
    ).all()
    keys = [o.key for o in spec.objectives]
    feasible = [(r.number, [r.values[k] for k in keys]) for r in rows
                if tracker.loss(r) is not None]
    return problem_hv.history(ref, spec.directions, feasible)


def normalised_hypervolumes(session: Session, studies: Sequence[Study]) -> dict[int, float]:
    """Each study's front hypervolume on its problem's box (one query for all studies)."""
    refs = {s.id: (s.extra or {}).get("problem_reference") for s in studies}
    ids = [i for i, ref in refs.items() if problem_hv.usable(ref)]
    if not ids:
        return {}
    fronts: dict[int, list] = {i: [] for i in ids}
    rows = session.execute(select(Trial.study_id, Trial.values)
                           .where(Trial.study_id.in_(ids), Trial.on_front.is_(True))).all()
    for study_id, values in rows:
        fronts[study_id].append(values)
    out = {}
    for s in studies:
        if s.id in fronts and fronts[s.id]:
            keys = [metric_key(o["metric"], o.get("device")) for o in s.spec["objectives"]]
            directions = [o["direction"] for o in s.spec["objectives"]]
            out[s.id] = problem_hv.front_hypervolume(
                refs[s.id], directions, [[v[k] for k in keys] for v in fronts[s.id]])
    return out
