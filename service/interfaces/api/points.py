"""``GET /studies/{id}/points``: a study's trials in columns, for plotting many of them fast.

The web viewer draws every trial of a study. ``/trials`` returns full records (with ``info``:
device samples, costs...) through ORM objects and pydantic models, which costs seconds for
10,000 trials; plotting needs only a few columns. This route selects just those columns and
writes them column by column (one list per field), which is several times smaller and faster.
Full records of single trials are still read from ``/trials``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import Text, cast, func, select

from service.interfaces.api.deps import MAX_DB_INT, SessionDep, StudyId, get_study_or_404
from service.persistence.models import Trial

router = APIRouter(prefix="/studies", tags=["studies"])

#: Trial fields returned, in this order, as parallel lists. ``accuracy`` is ``info.accuracy``
#: ("measured" / "predicted" when an accuracy screen is at work, else null).
COLUMNS = ("number", "state", "on_front", "stage", "duration_s", "worker", "error", "accuracy",
           "arch", "values")
MAX_POINTS = 100_000  # the largest budget a server accepts by default


def _finite(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: v if not isinstance(v, float) or math.isfinite(v) else None
                for k, v in values.items()}
    return values


@router.get(
    "/{study_id}/points",
    responses={200: {"description": "`{study_id, count, columns: {field: [...]}}`; `count` is "
                                    "the number of matching trials (before offset/limit)"}},
)
def study_points(
    study_id: StudyId,
    session: SessionDep,
    after: int | None = Query(None, ge=-1, le=MAX_DB_INT,
                              description="only trials numbered above this"),
    offset: int = Query(0, ge=0, le=MAX_DB_INT),
    limit: int = Query(MAX_POINTS, ge=1, le=MAX_POINTS),
) -> Response:
    """Trials ordered by number, as columns: number, state, on_front, stage, duration_s, worker,
    error, accuracy (measured/predicted/null), arch, values."""
    get_study_or_404(session, study_id)
    where = [Trial.study_id == study_id]
    if after is not None:
        where.append(Trial.number > after)
    count = session.scalar(select(func.count()).select_from(Trial).where(*where)) or 0
    fields = [getattr(Trial, c) for c in COLUMNS[:-3]]
    fields += [Trial.info["accuracy"].as_string(), cast(Trial.arch, Text),
               cast(Trial.values, Text)]
    rows = session.execute(
        select(*fields).where(*where)
        .order_by(Trial.number).offset(offset).limit(limit)
    ).all()
    scalars = {c: [row[i] for row in rows] for i, c in enumerate(COLUMNS[:-2])}
    # arch and values go out as the JSON text the database holds: no decode/encode per row
    raw = {c: "[" + ",".join(row[i] or "null" for row in rows) + "]"
           for i, c in enumerate(COLUMNS) if c in ("arch", "values")}
    if "NaN" in raw["values"] or "Infinity" in raw["values"]:  # from json.dumps; not JSON
        raw["values"] = json.dumps([_finite(json.loads(row[-1] or "null")) for row in rows])
    head = json.dumps({"study_id": study_id, "count": count, "columns": scalars},
                      separators=(",", ":"))
    body = f'{head[:-2]},"arch":{raw["arch"]},"values":{raw["values"]}}}}}'
    return Response(body, media_type="application/json")
