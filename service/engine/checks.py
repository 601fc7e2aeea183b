"""Warnings as data: what can be known about a study before it runs, and why a finished study
has no feasible trial.

``study_warnings`` runs at submit time and again when a worker starts the study; its answers go
to ``study.extra["warnings"]`` as ``{"code", "field", "message"}`` dicts that the CLI, the client
and the viewer show. ``explain_no_feasible`` goes to ``study.extra["no_feasible"]`` when a study
ends without a feasible trial. Neither refuses a study: a user may have reasons (a constraint
being explored, a table that grows); an error would be wrong, silence worse.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from search_spaces.base import Arch, SearchSpace
from search_spaces.ranking import ranking_warning
from service.engine.records import TrialRecord
from service.engine.resolve import ResolvedStudy
from service.engine.spec import ConstraintSpec, StudySpec

log = logging.getLogger(__name__)


def warning(code: str, field: str, message: str) -> dict[str, str]:
    return {"code": code, "field": field, "message": message}


def _bound_text(c: ConstraintSpec) -> str:
    parts = []
    if c.min is not None:
        parts.append(f">= {c.min:g}")
    if c.max is not None:
        parts.append(f"<= {c.max:g}")
    return f"{c.key} {' and '.join(parts)}"


def table_rows(space: SearchSpace) -> list[dict[str, float]] | None:
    """Every row's metrics when the space is a table (exact answers), else None."""
    table = getattr(space, "table", None)
    lookup = getattr(table, "lookup", None)
    return list(lookup.values()) if isinstance(lookup, dict) else None


def _extreme_costs(space: SearchSpace) -> list[dict[str, float]]:
    """Costs of the smallest and the largest arch (first and last choice of every dimension):
    the cost range of a supernet whose costs grow with every dimension."""
    out = []
    for pick in (0, -1):
        arch = Arch({n: d.choices[pick] for n, d in space.dimensions().items()})
        try:
            out.append(space.cost(space.canonical(arch)))
        except Exception:  # a space without a cost model: nothing to check
            log.debug("no cost for the extreme arch of %s", space.name, exc_info=True)
            return []
    return out


def metric_samples(study: ResolvedStudy) -> tuple[list[dict[str, float]], str]:
    """Metric values known without running anything, and what they are ('row of the table',
    'extreme arch'): a table's rows, or a supernet's smallest and largest arch's costs."""
    rows = table_rows(study.space)
    if rows is not None:
        return rows, "row of the table"
    if study.space.has_models and any(s.kind == "cost" for s in study.sources.values()):
        return _extreme_costs(study.space), "extreme arch (smallest or largest)"
    return [], ""


def study_warnings(study: ResolvedStudy) -> list[dict[str, str]]:
    """What this study will run into, found before it runs. A check that breaks (a plug-in
    space's cost model, say) is logged and skipped: warnings never stop a study."""
    try:
        return _study_warnings(study)
    except Exception:
        log.warning("study checks failed for %r", study.spec.name, exc_info=True)
        return []


def _study_warnings(study: ResolvedStudy) -> list[dict[str, str]]:
    spec = study.spec
    out: list[dict[str, str]] = []
    samples, what = metric_samples(study)
    exact = what == "row of the table"
    for i, c in enumerate(spec.constraints):
        values = [r[c.key] for r in samples if c.key in r]
        if values and all(c.violation(v) > 0 for v in values):
            out.append(warning(
                "constraint_unsatisfiable", f"constraints.{i}",
                f"no {what} meets {_bound_text(c)} ({c.key} spans {min(values):.4g} to "
                f"{max(values):.4g}{'' if exact else ' between the extremes'}): "
                "no trial can be feasible",
            ))
    if exact and len(spec.constraints) > 1 and not out:
        keys = [c.key for c in spec.constraints]
        usable = [r for r in samples if all(k in r for k in keys)]
        if usable and not any(
            all(c.violation(r[c.key]) <= 0 for c in spec.constraints) for r in usable
        ):
            out.append(warning(
                "constraints_unsatisfiable", "constraints",
                "each constraint is met by some row, but no row of the table meets all of "
                f"them together ({'; '.join(_bound_text(c) for c in spec.constraints)}): "
                "no trial can be feasible",
            ))
    if exact:
        for i, o in enumerate(spec.objectives):
            values = {r[o.key] for r in samples if o.key in r}
            if len(values) == 1:
                out.append(warning(
                    "constant_objective", f"objectives.{i}",
                    f"{o.key} is {next(iter(values)):g} on every row of the table: it cannot "
                    "trade off against the other objectives",
                ))
    out.extend(_accuracy_mode_warnings(study))
    ranking = ranking_warning(spec.search_space.name, spec.search_space.options)
    if ranking:  # the space's measured inherited-vs-trained ranking is poor (bench figures)
        out.append(warning("inherited_ranking", "search_space", ranking))
    return out


def _accuracy_mode_warnings(study: ResolvedStudy) -> list[dict[str, str]]:
    """``surrogate``/``hybrid`` screen accuracy objectives only; say when that cannot happen
    (the evaluator then measures every trial, see ``service.engine.evaluation.make_screen``)."""
    spec = study.spec
    if spec.accuracy.mode == "measured":
        return []
    objectives = {o.key for o in spec.objectives}
    outside = sorted(k for k, s in study.sources.items()
                     if s.kind == "accuracy" and k not in objectives)
    if not outside:
        return []
    return [warning(
        "accuracy_not_screened", "accuracy.mode",
        f"accuracy mode {spec.accuracy.mode!r} cannot screen: {', '.join(outside)} "
        "(a constraint, not an objective) must be measured for every trial, so every trial is "
        "measured as in mode 'measured'",
    )]


def merge_warnings(*lists: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """One list, each warning once (submit-time ones and start-time ones overlap)."""
    out: list[dict[str, str]] = []
    for items in lists:
        for w in items:
            if w not in out:
                out.append(w)
    return out


def explain_no_feasible(spec: StudySpec, records: Sequence[TrialRecord]) -> dict[str, Any] | None:
    """Why a study has no feasible trial (None when it has one): counts of failed, infeasible
    and predicted-only trials, and the constraint that excluded the most."""
    complete = [r for r in records if r.state == "complete" and "duplicate_of" not in r.info]
    failed = sum(r.state == "failed" for r in records)
    repeats = sum(r.state == "complete" and "duplicate_of" in r.info for r in records)
    violations = [0] * len(spec.constraints)
    infeasible = feasible = predicted_only = 0
    best: list[float | None] = [None] * len(spec.constraints)  # closest value to each bound
    for r in complete:
        broken = [i for i, c in enumerate(spec.constraints)
                  if c.key in r.values and c.violation(r.values[c.key]) > 0]
        for i, c in enumerate(spec.constraints):
            v = r.values.get(c.key)
            if v is not None and (best[i] is None or c.violation(v) < c.violation(best[i])):
                best[i] = v
        for i in broken:
            violations[i] += 1
        if broken:
            infeasible += 1
        elif (r.info.get("accuracy") == "predicted"
              and not spec.accuracy.front_includes_predicted):
            predicted_only += 1
        else:
            feasible += 1
    if feasible:
        return None
    out: dict[str, Any] = {"trials": len(records), "failed": failed, "infeasible": infeasible,
                           "predicted_only": predicted_only, "repeats": repeats}
    parts = [f"none of {len(records)} trials is feasible"]
    if failed:
        parts.append(f"{failed} failed")
    if infeasible:
        parts.append(f"{infeasible} violate a constraint")
    if repeats:  # so that the counts add up to the trials
        parts.append(f"{repeats} repeats an arch already tried" if repeats == 1
                     else f"{repeats} repeat archs already tried")
    if predicted_only:
        parts.append(f"{predicted_only} have predicted accuracy only "
                     "(accuracy.front_includes_predicted is false)")
    if any(violations):
        i = max(range(len(violations)), key=violations.__getitem__)
        c = spec.constraints[i]
        out["most_excluding"] = {"field": f"constraints.{i}", "constraint": _bound_text(c),
                                 "violated_by": violations[i], "closest": best[i]}
        parts.append(f"constraints.{i} ({_bound_text(c)}) excluded {violations[i]}"
                     + (f", the closest came to {best[i]:.4g}" if best[i] is not None else ""))
    out["message"] = "; ".join(parts)
    return out


def record_start_warnings(store: Any, study: ResolvedStudy,
                          submitted: Sequence[dict[str, str]] = ()) -> list[dict[str, str]]:
    """At study start: the checks again (devices and data may have changed since submit),
    kept with the submit-time ones in ``extra["warnings"]`` through a ``TrialStore``."""
    found = merge_warnings(submitted, study_warnings(study))
    if found:
        store.set_extra("warnings", found)
    return found


def record_outcome(store: Any, spec: StudySpec) -> dict[str, Any] | None:
    """At study end: ``extra["no_feasible"]`` says why there is no feasible trial, or is cleared
    (None) once there is one (a resumed study may find one)."""
    why = explain_no_feasible(spec, store.load_trials())
    store.set_extra("no_feasible", why)
    return why
