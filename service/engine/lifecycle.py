"""Study lifecycle rules that do not touch the database: "the same study" for duplicate
warnings and idempotent submits, and the spec of a resumed (extended) study."""

from __future__ import annotations

import hashlib
import json

from service.engine.resolve import SpecError
from service.engine.spec import BudgetSpec, StudySpec
from service.engine.stages import StagePlan

#: Study states a study can be resumed (or deleted) from.
FINISHED = ("completed", "failed", "cancelled")


def spec_hash(spec: StudySpec) -> str:
    """sha256 of what the search does: the spec without its name and budget (a study with a
    larger budget is the same search, to be extended rather than started again)."""
    body = spec.model_dump(mode="json", exclude={"name", "budget"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def resumed_spec(spec: StudySpec, budget: BudgetSpec, *, n_finished: int,
                 stage1_trials: int | None) -> StudySpec:
    """The spec a resumed study runs under: ``budget`` is the new total (trials already run
    count against it). A two-stage study keeps the length of its stage 1, so the extension goes
    to stage 2 rather than back to stage 1 (``stage1_fraction`` is re-expressed on the new
    total)."""
    if budget.trials <= n_finished:
        raise SpecError.at(("budget", "trials"),
                           f"{budget.trials} trials is not more than the {n_finished} this study "
                           "has already run; the budget is the new total")
    changes: dict = {"budget": budget.model_dump(mode="json")}
    if stage1_trials is not None:
        changes["stage1_fraction"] = stage1_trials / budget.trials
    return StudySpec.model_validate({**spec.model_dump(mode="json"), **changes})


def stage1_length(spec: StudySpec, space) -> int | None:
    plan = StagePlan.for_spec(spec, space)
    return plan.stage1_trials if plan is not None else None
