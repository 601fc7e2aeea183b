"""Study routes: submit, list, get, rename/tag/annotate, cancel, resume, delete, trials, Pareto
front, hypervolume history."""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import IntegrityError

from service.engine.checks import study_warnings, warning
from service.engine.export import trials_csv
from service.engine.importance import dimension_importance
from service.engine.lifecycle import FINISHED, resumed_spec, spec_hash, stage1_length
from service.engine.problem_hv import problem_reference
from service.engine.resolve import SpecError, resolve_spec
from service.engine.spec import StudySpec
from service.interfaces.api import public
from service.interfaces.api.deps import (
    MAX_DB_INT,
    SessionDep,
    SettingsDep,
    StudyId,
    get_study_or_404,
)
from service.interfaces.api.schemas import (
    HypervolumePointPublic,
    HypervolumePublic,
    ParetoPublic,
    StudyListPublic,
    StudyPublic,
    StudyResume,
    StudyUpdate,
    TrialListPublic,
)
from service.persistence import crud
from service.persistence.models import STUDY_STATUSES

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


@router.post("", status_code=201, response_model=StudyPublic,
             responses={200: {"description": "the study this Idempotency-Key created before"},
                        409: {"description": "the Idempotency-Key was used for another spec"}})
def submit_study(
    spec: StudySpec, session: SessionDep, settings: SettingsDep, request: Request,
    response: Response,
    idempotency_key: str | None = Header(
        None, min_length=1, max_length=200,
        description="a client-chosen key: submitting again with it returns the study it "
        "created (200) instead of a second study"),
) -> StudyPublic:
    """Validate a study against the registries and queue it. Warnings (a constraint nothing
    meets, an earlier study of the same search...) are in ``extra.warnings``."""
    _check_limits(spec, settings)
    if idempotency_key is not None and (
            earlier := crud.study_by_idempotency_key(session, idempotency_key)) is not None:
        return _replay(earlier, spec, idempotency_key, response)
    resolved = resolve_spec(spec, devices=request.app.state.device_catalog())
    digest = spec_hash(spec)
    warnings = study_warnings(resolved)
    same = crud.same_spec_studies(session, digest)
    if same:
        listed = ", ".join(f"{s.id} ({s.status}, {s.n_complete + s.n_failed} trials)"
                           for s in same)
        warnings.append(warning(
            "same_spec", "", f"the same search (spec without name and budget) exists as study "
            f"{listed}; to run it further, resume it with a larger budget "
            f"(paretonas resume {same[0].id} --trials N) instead of starting over"))
    try:
        study = crud.create_study(session, resolved=resolved, warnings=warnings,
                                  idempotency_key=idempotency_key, spec_hash=digest,
                                  problem_reference=problem_reference(resolved))
    except IntegrityError:  # the same key submitted concurrently: the other request won
        session.rollback()
        earlier = crud.study_by_idempotency_key(session, idempotency_key or "")
        if earlier is None:
            raise
        return _replay(earlier, spec, idempotency_key or "", response)
    return public.study_public(study)


def _replay(earlier, spec: StudySpec, key: str, response: Response) -> StudyPublic:
    if earlier.spec != spec.model_dump(mode="json"):
        raise HTTPException(409, f"Idempotency-Key {key!r} was used for study {earlier.id} "
                                 "with a different spec; use a new key for a new study")
    response.status_code = 200
    return public.study_public(earlier)


@router.get("", response_model=StudyListPublic)
def list_studies(
    session: SessionDep,
    status: StatusFilter | None = None,
    offset: int = Query(0, ge=0, le=MAX_DB_INT),
    limit: int = Query(50, ge=1, le=500),
) -> StudyListPublic:
    rows, count = crud.list_studies(session, status=status, offset=offset, limit=limit)
    hv = crud.normalised_hypervolumes(session, rows)
    return StudyListPublic(
        data=[public.study_public(s, hypervolume_normalised=hv.get(s.id)) for s in rows],
        count=count)


@router.get("/{study_id}", response_model=StudyPublic)
def get_study(study_id: StudyId, session: SessionDep) -> StudyPublic:
    study = get_study_or_404(session, study_id)
    hv = crud.normalised_hypervolumes(session, [study]).get(study.id)
    return public.study_public(study, hypervolume_normalised=hv)


@router.post("/{study_id}/cancel", response_model=StudyPublic)
def cancel_study(study_id: StudyId, session: SessionDep) -> StudyPublic:
    """Stop the study after its current trial (at once if still queued)."""
    study = get_study_or_404(session, study_id)
    return public.study_public(crud.cancel_study(session, study=study))


@router.patch("/{study_id}", response_model=StudyPublic)
def update_study(study_id: StudyId, body: StudyUpdate, session: SessionDep) -> StudyPublic:
    """Rename a study, replace its tags or its notes (only the fields given change)."""
    study = get_study_or_404(session, study_id)
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise SpecError.at(("body",), "nothing to change: give 'name', 'tags' and/or 'notes'")
    if "name" in changes and changes["name"] is None:
        raise SpecError.at(("body", "name"), "a study needs a name (1 to 200 characters)")
    changes = {k: ([] if k == "tags" else "") if v is None else v for k, v in changes.items()}
    return public.study_public(crud.update_study(session, study=study, changes=changes))


@router.delete("/{study_id}", status_code=204, response_class=Response,
               responses={409: {"description": "the study is running: cancel it first"}})
def delete_study(study_id: StudyId, session: SessionDep) -> Response:
    """Delete a study with its trials. A running study is refused: cancel it first."""
    get_study_or_404(session, study_id)
    if not crud.delete_study(session, study_id=study_id):
        raise HTTPException(409, f"study {study_id} is running; cancel it first (POST "
                                 f"/api/v1/studies/{study_id}/cancel) and delete it once its "
                                 "status is 'cancelled'")
    return Response(status_code=204)


@router.post("/{study_id}/resume", response_model=StudyPublic,
             responses={409: {"description": "the study is queued or running"}})
def resume_study(study_id: StudyId, body: StudyResume, session: SessionDep,
                 settings: SettingsDep, request: Request) -> StudyPublic:
    """Queue a finished study again with a larger budget (the new total): extend a completed
    study, resume a cancelled or failed one. Its trials are kept; the search continues from
    them (nothing already evaluated is evaluated again)."""
    study = get_study_or_404(session, study_id)
    if study.status not in FINISHED:
        raise HTTPException(409, f"study {study_id} is {study.status}; only a "
                                 f"{'/'.join(FINISHED)} study can be resumed")
    old = StudySpec.model_validate(study.spec)
    resolved = resolve_spec(old, devices=request.app.state.device_catalog())
    spec = resumed_spec(old, body.budget, n_finished=study.n_complete + study.n_failed,
                        stage1_trials=stage1_length(old, resolved.space))
    _check_limits(spec, settings)
    if not crud.resume_study(session, study=study, spec=spec.model_dump(mode="json")):
        raise HTTPException(409, f"study {study_id} was resumed by another request")
    return public.study_public(study)


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
    page = TrialListPublic(data=[public.trial_public(t) for t in rows], count=count)
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
    return ParetoPublic(objectives=public.objectives_of(study),
                        data=[public.trial_public(t) for t in rows])


def _csv(study_id: int, study, rows, name: str) -> PlainTextResponse:
    return PlainTextResponse(
        trials_csv(StudySpec.model_validate(study.spec), rows), media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="study-{study_id}-{name}.csv"'},
    )


@router.get("/{study_id}/pareto.csv", response_class=PlainTextResponse)
def pareto_csv(study_id: StudyId, session: SessionDep) -> PlainTextResponse:
    """The front as CSV, in the layout of ``trials.csv``."""
    study, rows = _front(session, study_id)
    return _csv(study_id, study, rows, "pareto")


@router.get("/{study_id}/trials.csv", response_class=PlainTextResponse)
def trials_csv_route(study_id: StudyId, session: SessionDep) -> PlainTextResponse:
    """Every trial: state, stage, front and feasibility, arch, every metric (objectives and
    constraints), each metric's source (measured / cached / computed / predicted), the error."""
    study = get_study_or_404(session, study_id)
    rows, _ = crud.list_trials(session, study_id=study_id, offset=0, limit=10_000_000,
                               after=None, state=None)
    return _csv(study_id, study, rows, "trials")


_IMPORTANCE: OrderedDict[tuple, dict] = OrderedDict()  # (study, created, trials) -> answer


@router.get("/{study_id}/importance")
def importance(study_id: StudyId, session: SessionDep) -> dict:
    """How much each architecture dimension explains of each objective over the study's
    measured trials (Optuna's fANOVA importance evaluator; shares sum to 1 per objective)."""
    study = get_study_or_404(session, study_id)
    key = (study.id, study.created_at, study.n_complete, study.n_failed)
    if key not in _IMPORTANCE:
        rows, _ = crud.list_trials(session, study_id=study_id, offset=0, limit=10_000_000,
                                   after=None, state="complete")
        _IMPORTANCE[key] = dimension_importance(StudySpec.model_validate(study.spec), rows)
        while len(_IMPORTANCE) > 32:  # a few recent answers: the viewer asks once per change
            _IMPORTANCE.popitem(last=False)
    return _IMPORTANCE[key]


@router.get("/{study_id}/hypervolume", response_model=HypervolumePublic)
def hypervolume(
    study_id: StudyId, session: SessionDep,
    reference: Literal["study", "problem"] = Query(
        "study", description="study: the study's own reference point (objective units); "
        "problem: normalised to [0, 1] on the problem's box, comparable across studies"),
) -> HypervolumePublic:
    """Hypervolume after each trial that changed the front, and the last finished trial."""
    study = get_study_or_404(session, study_id)
    last = crud.last_trial_number(session, study_id=study_id)
    if reference == "study":
        points = [(p.trial_number, p.hypervolume)
                  for p in crud.hypervolume_history(session, study_id=study_id)]
        ref_point = study.reference_point
    else:
        points, ref_point = crud.problem_hypervolume_history(session, study=study), None
    return HypervolumePublic(
        reference=reference, reference_point=ref_point, last_trial=last,
        problem_reference=(study.extra or {}).get("problem_reference"),
        data=[HypervolumePointPublic(trial_number=n, hypervolume=hv) for n, hv in points],
    )
