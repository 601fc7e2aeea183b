"""The optional post-search stage (FMAS): fine-tune the Pareto candidates on the full training
set, keep their inherited-weight values as "before" in ``info["finetune"]``, store the fine-tuned
accuracy as the trial's values, and recompute the front and its hypervolume.

Called by ``StudyRunner.run`` once the search budget is spent. Candidates are the front trials,
best first by the first objective, at most ``finetune.max_candidates``; a candidate whose
fine-tuning fails keeps its values and records the error.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from search_spaces.base import Arch, EvalContext
from service.engine.evaluation import study_compute
from service.engine.front import losses, nondominated, on_front_candidate
from service.engine.records import TrialRecord, TrialStore
from service.engine.resolve import ResolvedStudy
from surrogate.pareto import hypervolume, loss_signs

log = logging.getLogger(__name__)


def candidates(study: ResolvedStudy, records: list[TrialRecord]) -> list[TrialRecord]:
    """The front trials, best first by the first objective, at most ``max_candidates``."""
    spec = study.spec
    assert spec.finetune is not None
    front = [r for r in records if r.on_front and r.state == "complete"]
    sign = loss_signs([spec.objectives[0].direction])[0]
    front.sort(key=lambda r: sign * r.values[spec.objectives[0].key])
    return front[: spec.finetune.max_candidates]


def recompute_front(study: ResolvedStudy, records: list[TrialRecord],
                    reference: list[float] | None) -> tuple[list[int], float | None]:
    """Front trial numbers over the (updated) complete, feasible, non-duplicate trials, and the
    hypervolume against the study's reference point (None when it has none)."""
    spec = study.spec
    front = nondominated([r for r in records if on_front_candidate(r, spec)], spec)
    if not front:
        return [], None
    hv = None
    if reference is not None:
        hv = float(hypervolume(losses(front, spec),
                               np.asarray(reference) * loss_signs(spec.directions)))
    return [r.number for r in front], hv


def finetune_front(study: ResolvedStudy, records: list[TrialRecord], store: TrialStore, *,
                   seed: int = 0) -> dict[str, Any]:
    """Run the stage; returns the summary also stored in ``studies.extra["finetune"]``."""
    spec = study.spec
    assert spec.finetune is not None
    accuracy = sorted({s.ref.metric for s in study.sources.values() if s.kind == "accuracy"})
    store.check_lease()  # minutes of fine-tuning are wasted on a study another worker owns now
    chosen = candidates(study, records)
    _, hv_before = recompute_front(study, records, store.reference_point)
    t0 = time.perf_counter()
    done = []
    for rec in chosen:
        started = time.perf_counter()
        before = {k: rec.values[k] for k, s in study.sources.items() if s.kind == "accuracy"}
        try:
            measured, details = study.space.finetune(
                Arch(rec.arch), accuracy, epochs=spec.finetune.epochs, lr=spec.finetune.lr,
                context=EvalContext(seed=seed, compute=study_compute(spec)),
            )
        except Exception as exc:  # one candidate failing must not lose the others
            log.warning("fine-tuning trial %s failed: %s", rec.number, exc)
            rec.info = {**rec.info, "finetune": {"error": f"{type(exc).__name__}: {exc}"}}
            continue
        after = {k: float(measured[s.ref.metric]) for k, s in study.sources.items()
                 if s.kind == "accuracy"}
        rec.values = {**rec.values, **after}
        rec.info = {**rec.info, "finetune": {
            "before": before, "after": after, "seconds": time.perf_counter() - started,
            **details,
        }}
        done.append(rec.number)
    front, hv_after = recompute_front(study, records, store.reference_point)
    changed = []
    for rec in records:
        on = rec.number in front
        if on != rec.on_front or rec in chosen:
            rec.on_front = on
            changed.append(rec)
    store.update_trials(changed, best_hypervolume=hv_after)
    summary = {
        "candidates": [r.number for r in chosen], "finetuned": done,
        "front_after": front, "hypervolume_before": hv_before, "hypervolume_after": hv_after,
        "epochs": spec.finetune.epochs, "seconds": time.perf_counter() - t0,
    }
    store.set_extra("finetune", summary)
    return summary
