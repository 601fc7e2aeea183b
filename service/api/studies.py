"""Study routes: submit, list, get, cancel, trials, Pareto front, hypervolume history."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from service import crud
from service.api.deps import MAX_DB_INT, SessionDep, SettingsDep, StudyId, get_study_or_404
from service.checks import study_warnings
from service.models import STUDY_STATUSES
from service.resolve import SpecError, resolve_spec
from service.schemas import (
    HypervolumePointPublic,
    HypervolumePublic,
    ParetoPublic,
    StudyListPublic,
    StudyPublic,
    TrialListPublic,
)
from service.spec import StudySpec

router = APIRouter(prefix="/studies", tags=["studies"])

StatusFilter = Literal["queued", "running", "completed", "failed", "cancelled"]
assert set(StatusFilter.__args__) == set(STUDY_STATUSES)


def _check_limits(spec: StudySpec, settings) -> None:
    if spec.budget.trials > settings.max_trials:
        raise SpecError.at(("budget", "trials"),
                           f"{spec.budget.trials} exceeds this server's limit of "
                           f"{settings.max_trials} trials")
    if spec.budget.seconds and spec.budget.seconds > settings.max_seconds:
        raise SpecError.at(("budget", "seconds"),
                           f"{spec.budget.seconds} exceeds this server's limit of "
                           f"{settings.max_seconds} seconds")


@router.post("", status_code=201, response_model=StudyPublic)
def submit_study(spec: StudySpec, session: SessionDep, settings: SettingsDep,
                 request: Request) -> StudyPublic:
    """Validate a study against the registries and queue it."""
    _check_limits(spec, settings)
    resolved = resolve_spec(spec, devices=request.app.state.device_catalog())
    warnings = study_warnings(resolved)
    return crud.study_public(crud.create_study(session, resolved=resolved, warnings=warnings))


@router.get("", response_model=StudyListPublic)
def list_studies(
    session: SessionDep,
    status: StatusFilter | None = None,
    offset: int = Query(0, ge=0, le=MAX_DB_INT),
    limit: int = Query(50, ge=1, le=500),
) -> StudyListPublic:
    rows, count = crud.list_studies(session, status=status, offset=offset, limit=limit)
    return StudyListPublic(data=[crud.study_public(s) for s in rows], count=count)


@router.get("/{study_id}", response_model=StudyPublic)
def get_study(study_id: StudyId, session: SessionDep) -> StudyPublic:
    return crud.study_public(get_study_or_404(session, study_id))


@router.post("/{study_id}/cancel", response_model=StudyPublic)
def cancel_study(study_id: StudyId, session: SessionDep) -> StudyPublic:
    """Stop the study after its current trial (at once if still queued)."""
    study = get_study_or_404(session, study_id)
    return crud.study_public(crud.cancel_study(session, study=study))


@router.get("/{study_id}/trials", response_model=TrialListPublic)
def list_trials(
    study_id: StudyId,
    session: SessionDep,
    offset: int = Query(0, ge=0, le=MAX_DB_INT),
    limit: int = Query(100, ge=1, le=10_000),
    after: int | None = Query(None, ge=-1, le=MAX_DB_INT,
                              description="only trials numbered above this"),
    state: Literal["complete", "failed"] | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    get_study_or_404(session, study_id)
    rows, count = crud.list_trials(session, study_id=study_id, offset=offset, limit=limit,
                                   after=after, state=state, descending=order == "desc")
    page = TrialListPublic(data=[crud.trial_public(t) for t in rows], count=count)
    # Already validated: serialise once instead of letting FastAPI re-validate every row
    # (pages of up to 10,000 trials are the viewer's hot path).
    return Response(page.model_dump_json(), media_type="application/json")


def _front(session, study_id: int):
    study = get_study_or_404(session, study_id)
    rows, _ = crud.list_trials(session, study_id=study_id, offset=0, limit=1_000_000,
                               after=None, state="complete", on_front=True)
    return study, rows


@router.get("/{study_id}/pareto", response_model=ParetoPublic)
def pareto(study_id: StudyId, session: SessionDep) -> ParetoPublic:
    """The study's current Pareto front (feasible, non-dominated, unique archs)."""
    study, rows = _front(session, study_id)
    return ParetoPublic(objectives=crud.objectives_of(study),
                        data=[crud.trial_public(t) for t in rows])


@router.get("/{study_id}/pareto.csv", response_class=PlainTextResponse)
def pareto_csv(study_id: StudyId, session: SessionDep) -> PlainTextResponse:
    study, rows = _front(session, study_id)
    keys = [o.key for o in crud.objectives_of(study)]
    return PlainTextResponse(
        crud.trials_csv(rows, keys), media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="study-{study_id}-pareto.csv"'},
    )


@router.get("/{study_id}/hypervolume", response_model=HypervolumePublic)
def hypervolume(study_id: StudyId, session: SessionDep) -> HypervolumePublic:
    """Hypervolume after each trial that changed the front (reference point included)."""
    study = get_study_or_404(session, study_id)
    points = crud.hypervolume_history(session, study_id=study_id)
    return HypervolumePublic(
        reference_point=study.reference_point,
        data=[HypervolumePointPublic(trial_number=p.trial_number, hypervolume=p.hypervolume)
              for p in points],
    )
