"""Public API shapes, one family per resource (``...Public``, ``...ListPublic{data,count}``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.engine.spec import BudgetSpec


class ObjectivePublic(BaseModel):
    key: str
    metric: str
    device: str | None
    direction: str
    unit: str = ""


class StudyPublic(BaseModel):
    id: int
    name: str
    status: str
    search_space: str
    spec: dict[str, Any]
    objectives: list[ObjectivePublic]
    n_trials: int
    n_complete: int
    n_failed: int
    progress: float
    best_hypervolume: float | None
    #: the front's hypervolume in [0, 1] on the problem's box (``extra.problem_reference``):
    #: comparable across studies of the same problem; None where the box is unknown
    hypervolume_normalised: float | None = None
    reference_point: list[float] | None
    error: str | None
    extra: dict[str, Any]
    cancel_requested: bool
    tags: list[str] = []
    notes: str = ""
    worker: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime


Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[\w.:/+-]+$")]


class StudyUpdate(BaseModel):
    """``PATCH /studies/{id}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[Tag] | None = Field(default=None, max_length=32,
                                   description="letters, digits and . : / + - _")
    notes: str | None = Field(default=None, max_length=20_000)

    @field_validator("tags")
    @classmethod
    def _unique(cls, tags: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(tags)) if tags is not None else None


class StudyResume(BaseModel):
    """``POST /studies/{id}/resume``: the study's new total budget (trials already run count)."""

    model_config = ConfigDict(extra="forbid")
    budget: BudgetSpec


class StudyListPublic(BaseModel):
    data: list[StudyPublic]
    count: int


class TrialPublic(BaseModel):
    number: int
    arch: dict[str, Any]
    arch_key: str
    values: dict[str, float]
    state: str
    on_front: bool
    stage: int
    worker: str | None
    duration_s: float
    error: str | None
    info: dict[str, Any]
    started_at: dt.datetime
    finished_at: dt.datetime


class TrialListPublic(BaseModel):
    data: list[TrialPublic]
    count: int


class ParetoPublic(BaseModel):
    objectives: list[ObjectivePublic]
    data: list[TrialPublic]


class HypervolumePointPublic(BaseModel):
    trial_number: int
    hypervolume: float


class HypervolumePublic(BaseModel):
    #: "study": the study's own reference (fixed from its first feasible trials), in objective
    #: units; "problem": normalised to [0, 1] on the problem's box (comparable across studies)
    reference: str = "study"
    reference_point: list[float] | None
    problem_reference: dict[str, Any] | None = None
    #: the study's last finished trial: the curve holds its last value up to there
    last_trial: int | None = None
    data: list[HypervolumePointPublic]


class OptionsSchema(BaseModel):
    name: str
    doc: str
    options_schema: dict[str, Any]
    # supernet spaces: how inherited-weight accuracy ranked subnets against trained ones
    # (search_spaces/data/weight_sharing.json, measured by bench/weight_sharing.py)
    rank_correlation: dict[str, Any] | None = None


class RegistryPublic(BaseModel):
    data: list[OptionsSchema]


class Health(BaseModel):
    status: str
    database: str
    version: str
