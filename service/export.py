"""Trials as a flat table (CSV): every metric, constraint values and feasibility, where each
value came from (measured / cached / computed / predicted), the stage and the error. One layout
for the full export (``trials.csv``) and the front (``pareto.csv``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from service.spec import StudySpec

FIXED = ["number", "state", "on_front", "feasible", "stage", "accuracy", "duplicate_of",
         "duration_s", "worker", "started_at", "finished_at", "error"]


def metric_keys(spec: StudySpec, trials: Iterable[Any] = ()) -> list[str]:
    """Objectives, then constraint metrics, then any other value the trials hold."""
    keys = [o.key for o in spec.objectives]
    keys += [c.key for c in spec.constraints if c.key not in keys]
    for t in trials:
        keys += [k for k in t.values if k not in keys]
    return keys


def feasible(spec: StudySpec, values: dict[str, float], state: str) -> bool | None:
    """Meets every constraint (None for a failed trial: nothing to judge)."""
    if state != "complete":
        return None
    return all(c.key in values and c.violation(values[c.key]) <= 0 for c in spec.constraints)


def trials_csv(spec: StudySpec, trials: Sequence[Any]) -> str:
    """``trials``: rows with the ``Trial`` model's attributes (ORM rows or records)."""
    dims = sorted({k for t in trials for k in t.arch})
    keys = metric_keys(spec, trials)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*FIXED, *dims, *keys, *(f"source:{k}" for k in keys)])
    for t in trials:
        info = t.info or {}
        sources = info.get("sources", {})
        ok = feasible(spec, t.values, t.state)
        writer.writerow([
            t.number, t.state, t.on_front, "" if ok is None else ok, t.stage,
            info.get("accuracy", ""), info.get("duplicate_of", ""), f"{t.duration_s:.6g}",
            t.worker or "", t.started_at.isoformat(), t.finished_at.isoformat(), t.error or "",
            *(t.arch.get(d, "") for d in dims), *(t.values.get(k, "") for k in keys),
            *(sources.get(k, "") for k in keys),
        ])
    return buf.getvalue()
