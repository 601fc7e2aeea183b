"""Database rows as the API's public shapes (``service.interfaces.api.schemas``)."""

from __future__ import annotations

from service.engine.spec import metric_key
from service.interfaces.api.schemas import ObjectivePublic, StudyPublic, TrialPublic
from service.persistence.models import Study, Trial


def objectives_of(study: Study) -> list[ObjectivePublic]:
    units = (study.extra or {}).get("units", {})
    out = []
    for o in study.spec["objectives"]:
        key = metric_key(o["metric"], o.get("device"))
        out.append(ObjectivePublic(key=key, metric=o["metric"], device=o.get("device"),
                                   direction=o["direction"], unit=units.get(key, "")))
    return out


def study_public(study: Study, *, hypervolume_normalised: float | None = None) -> StudyPublic:
    return StudyPublic(
        id=study.id, name=study.name, status=study.status, search_space=study.search_space,
        spec=study.spec, objectives=objectives_of(study), n_trials=study.n_trials,
        n_complete=study.n_complete, n_failed=study.n_failed, progress=study.progress,
        best_hypervolume=study.best_hypervolume, reference_point=study.reference_point,
        hypervolume_normalised=hypervolume_normalised,
        error=study.error, extra=study.extra or {}, cancel_requested=study.cancel_requested,
        tags=study.tags or [], notes=study.notes or "",
        worker=study.lease_owner, created_at=study.created_at, started_at=study.started_at,
        finished_at=study.finished_at, updated_at=study.updated_at,
    )


def trial_public(t: Trial) -> TrialPublic:
    return TrialPublic(
        number=t.number, arch=t.arch, arch_key=t.arch_key, values=t.values, state=t.state,
        on_front=t.on_front, stage=t.stage, worker=t.worker, duration_s=t.duration_s,
        error=t.error, info=t.info, started_at=t.started_at, finished_at=t.finished_at,
    )
