"""Trials as a flat table (CSV): every metric, constraint values and feasibility, where each
value came from (measured / cached / computed / predicted), the stage and the error. One layout
for the full export (``trials.csv``) and the front (``pareto.csv``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from service.engine.spec import StudySpec

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


def _device_metric(t: Any, device: str, metric: str) -> Any:
    return (((t.info or {}).get("devices") or {}).get(device) or {}).get("metrics", {}).get(metric)


def trials_csv(spec: StudySpec, trials: Sequence[Any]) -> str:
    """``trials``: rows with the ``Trial`` model's attributes (ORM rows or records). Devices whose
    latency carries an uncertainty band (e.g. the GAP8 model's out-of-sample error) add a
    ``latency_err_pct@<device>`` column."""
    dims = sorted({k for t in trials for k in t.arch})
    keys = metric_keys(spec, trials)
    banded = sorted({
        device for t in trials for device in ((t.info or {}).get("devices") or {})
        if _device_metric(t, device, "latency_err_pct") is not None
    })
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*FIXED, *dims, *keys, *(f"source:{k}" for k in keys),
                     *(f"latency_err_pct@{d}" for d in banded)])
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
            *(_device_metric(t, d, "latency_err_pct") for d in banded),
        ])
    return buf.getvalue()
