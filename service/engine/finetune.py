"""The optional post-search stage (FMAS): fine-tune the front's candidates, keep their
inherited-weight values as "before" in ``info["finetune"]``, store the fine-tuned accuracy as the
trial's values, and compute the front after fine-tuning over the fine-tuned trials only.

Called by ``StudyRunner.run`` once the search budget is spent. Candidates are every front trial,
or ``max_candidates`` of them in equal steps along the first objective (``front_spread``), run
ends first and then ever finer midpoints, so that a ``budget_seconds`` that stops the stage early
still leaves the front covered evenly (the first candidate always runs: a stage with no
fine-tuned trial would leave no front at all). With ``prune`` the candidates train on a
training subset chosen by success rate (``data_pruning``): one probe fine-tuning of the first
candidate records the rates, and its subsets serve every candidate of the study.

``studies.extra["finetune"]`` holds the stage's progress while it runs (candidates done, seconds
per candidate) and at the end both fronts (``front_before``, ``front_after``: trial numbers with
their values) and hypervolumes; ``extra["finetune_subsets"]`` the pruning subsets. A candidate
whose fine-tuning fails keeps its values, records the error and is not on the front after.

Each candidate's result is saved as it is made, and the stage's last write (the front flags)
marks the candidates ``stage_done``: a stage interrupted between the two is resumed by the next
run, which keeps the candidates already tuned (the pruning probe runs again).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from search_spaces.base import Arch, EvalContext
from service.engine import data_pruning
from service.engine.evaluation import study_compute
from service.engine.front import nondominated, on_front_candidate
from service.engine.front_spread import coarse_to_fine, even_positions
from service.engine.records import TrialRecord, TrialStore
from service.engine.resolve import ResolvedStudy
from service.engine.spec import FinetuneSpec
from surrogate.pareto import hypervolume, loss_signs, to_loss

log = logging.getLogger(__name__)


def stage_pending(records: list[TrialRecord]) -> bool:
    """The stage has not finished: no trial carries the ``stage_done`` mark that the stage's
    last write (the front after, in one atomic update) puts on every candidate it tried."""
    return not any(r.info.get("finetune", {}).get("stage_done") for r in records)


def _value_before(rec: TrialRecord, key: str) -> float:
    """``key``'s value before fine-tuning (a resumed stage finds some trials already tuned)."""
    return rec.info.get("finetune", {}).get("before", {}).get(key, rec.values[key])


def front_by_first_objective(study: ResolvedStudy,
                             records: list[TrialRecord]) -> list[TrialRecord]:
    """The front trials, best first by the first objective (before fine-tuning)."""
    spec = study.spec
    front = [r for r in records if r.on_front and r.state == "complete"]
    sign = loss_signs([spec.objectives[0].direction])[0]
    key = spec.objectives[0].key
    return sorted(front, key=lambda r: (sign * _value_before(r, key), r.number))


def candidates(study: ResolvedStudy, records: list[TrialRecord]) -> list[TrialRecord]:
    """The front trials to fine-tune, in the order to run them: ``max_candidates`` (default
    all) in equal steps along the first objective, both ends first, then midpoints."""
    ft = study.spec.finetune
    assert ft is not None
    front = front_by_first_objective(study, records)
    chosen = [front[i] for i in even_positions(len(front), ft.max_candidates or len(front))]
    return [chosen[i] for i in coarse_to_fine(len(chosen))]


def _value_after(rec: TrialRecord, key: str) -> float:
    return rec.values[key]


def hypervolume_of(study: ResolvedStudy, front: list[TrialRecord],
                   reference: list[float] | None, *, before: bool = False) -> float | None:
    """The front's hypervolume against the study's reference (None without either); with
    ``before``, on its values before fine-tuning (a resumed stage finds some of its trials
    tuned already, and their new values must not leak into the "before" figure)."""
    if not front or reference is None:
        return None
    value = _value_before if before else _value_after
    keys = [o.key for o in study.spec.objectives]
    values = np.array([[value(r, k) for k in keys] for r in front], dtype=float)
    return float(hypervolume(to_loss(values, study.spec.directions),
                             np.asarray(reference) * loss_signs(study.spec.directions)))


def _front_points(study: ResolvedStudy, records: list[TrialRecord], numbers: list[int], *,
                  before: bool = False) -> list[dict[str, Any]]:
    keys = [o.key for o in study.spec.objectives]
    by_number = {r.number: r for r in records}
    value = _value_before if before else _value_after
    return [{"number": n, "values": {k: value(by_number[n], k) for k in keys}} for n in numbers]


def probe_subsets(study: ResolvedStudy, probe: TrialRecord, accuracy: list[str],
                  context: EvalContext) -> dict[str, Any]:
    """Fine-tune ``probe`` for the early epochs on the whole training set, recording each
    example's success, and derive the candidate subsets and the chosen one. The probe's values
    are not kept: it only measures the training set."""
    ft = study.spec.finetune
    assert ft is not None and ft.prune is not None
    started = time.perf_counter()
    _, details = study.space.finetune(
        Arch(probe.arch), accuracy, epochs=ft.prune.probe_epochs, lr=ft.lr, context=context,
        record_success=True, score_threshold=ft.prune.score_threshold)
    rates = details.get("success_rate")
    out: dict[str, Any] = {"probe_trial": probe.number, "probe_epochs": ft.prune.probe_epochs,
                           "probe_seconds": round(time.perf_counter() - started, 3),
                           "pick": ft.prune.pick, "score_threshold": ft.prune.score_threshold}
    if rates is None:
        return {**out, "subsets": [], "chosen": None,
                "reason": details.get("skipped", "the space recorded no success rates")}
    subsets = data_pruning.derive_subsets(rates)
    chosen = data_pruning.pick_subset(subsets, rule=ft.prune.pick,
                                      min_examples=ft.prune.min_examples)
    return {**out, "train_set_size": len(rates), "subsets": subsets,
            "success_histogram": {str(v): int(c) for v, c in zip(
                *np.unique(np.asarray(rates), return_counts=True), strict=True)},
            "chosen": None if chosen is None else chosen["max_rate"],
            **({} if chosen is not None else {
                "reason": f"no subset has min_examples={ft.prune.min_examples}"})}


def _chosen_indices(pruning: dict[str, Any] | None) -> list[int] | None:
    if not pruning or pruning.get("chosen") is None:
        return None
    return next(s["indices"] for s in pruning["subsets"] if s["max_rate"] == pruning["chosen"])


def finetune_front(study: ResolvedStudy, records: list[TrialRecord], store: TrialStore, *,
                   seed: int = 0) -> dict[str, Any]:
    """Run the stage; returns the summary also stored in ``studies.extra["finetune"]``."""
    spec = study.spec
    ft: FinetuneSpec | None = spec.finetune
    assert ft is not None
    accuracy = sorted({s.ref.metric for s in study.sources.values() if s.kind == "accuracy"})
    store.check_lease()  # minutes of fine-tuning are wasted on a study another worker owns now
    context = EvalContext(seed=seed, compute=study_compute(spec))
    front = [r for r in records if r.on_front and r.state == "complete"]
    front_before = [r.number for r in front]
    hv_before = hypervolume_of(study, front, store.reference_point, before=True)
    chosen = candidates(study, records)
    t0 = time.perf_counter()
    summary: dict[str, Any] = {
        "candidates": [r.number for r in chosen], "front_size": len(front_before),
        "front_before": _front_points(study, records, front_before, before=True),
        "hypervolume_before": hv_before, "epochs": ft.epochs,
        "budget_seconds": ft.budget_seconds, "progress": {"done": 0, "total": len(chosen)},
        "per_candidate": [], "finetuned": [], "state": "running",
    }
    store.set_extra("finetune", summary)
    pruning = None
    if ft.prune is not None and chosen:
        try:
            pruning = probe_subsets(study, chosen[0], accuracy, context)
        except Exception as exc:  # without subsets the candidates still train, on the full set
            log.warning("pruning probe on trial %s failed: %s", chosen[0].number, exc)
            pruning = {"probe_trial": chosen[0].number, "subsets": [], "chosen": None,
                       "reason": f"the probe failed: {type(exc).__name__}: {exc}"}
        store.set_extra("finetune_subsets", pruning)
        summary["pruning"] = {k: v for k, v in pruning.items() if k != "subsets"} | {
            "subsets": data_pruning.summary(pruning["subsets"],
                                            pruning.get("train_set_size", 0))}
    examples = _chosen_indices(pruning)
    for i, rec in enumerate(chosen):
        spent = time.perf_counter() - t0
        if i > 0 and ft.budget_seconds is not None and spent >= ft.budget_seconds:
            summary["stopped_by_budget"] = {"after": i, "seconds": round(spent, 3)}
            break
        store.check_lease()
        started = time.perf_counter()
        if "after" in rec.info.get("finetune", {}):  # tuned before this stage was interrupted
            summary["finetuned"].append(rec.number)
            summary["per_candidate"].append({
                "number": rec.number, "before": rec.info["finetune"]["before"],
                "after": rec.info["finetune"]["after"],
                "seconds": round(rec.info["finetune"].get("seconds", 0.0), 3), "resumed": True})
            summary["progress"]["done"] = i + 1
            continue
        before = {k: rec.values[k] for k, s in study.sources.items() if s.kind == "accuracy"}
        try:
            measured, details = study.space.finetune(
                Arch(rec.arch), accuracy, epochs=ft.epochs, lr=ft.lr, context=context,
                examples=examples)
        except Exception as exc:  # one candidate failing must not lose the others
            log.warning("fine-tuning trial %s failed: %s", rec.number, exc)
            rec.info = {**rec.info, "finetune": {"error": f"{type(exc).__name__}: {exc}"}}
            outcome = {"number": rec.number, "error": str(exc)}
        else:
            after = {k: float(measured[s.ref.metric]) for k, s in study.sources.items()
                     if s.kind == "accuracy"}
            rec.values = {**rec.values, **after}
            rec.info = {**rec.info, "finetune": {
                **details, "before": before, "after": after,
                "seconds": time.perf_counter() - started,
                "subset": None if examples is None else pruning["chosen"],  # type: ignore[index]
            }}
            summary["finetuned"].append(rec.number)
            outcome = {"number": rec.number, "before": before, "after": after}
        outcome["seconds"] = round(time.perf_counter() - started, 3)
        summary["per_candidate"].append(outcome)
        summary["progress"]["done"] = i + 1
        store.update_trials([rec], best_hypervolume=None)  # each result lands as it is made
        store.set_extra("finetune", summary)
    finetuned = set(summary["finetuned"])
    tuned = [r for r in records if r.number in finetuned]
    after_front = nondominated([r for r in tuned if on_front_candidate(r, spec)], spec)
    hv_after = hypervolume_of(study, after_front, store.reference_point)
    on_after = {r.number for r in after_front}
    tried = {c["number"] for c in summary["per_candidate"]}
    changed = []
    for rec in records:
        if rec.number in tried:
            rec.info = {**rec.info, "finetune": {**rec.info["finetune"], "stage_done": True}}
        if rec.on_front != (rec.number in on_after) or rec.number in tried:
            rec.on_front = rec.number in on_after
            changed.append(rec)
    store.update_trials(changed, best_hypervolume=hv_after)
    summary.update({
        "front_after": _front_points(study, records, [r.number for r in after_front]),
        "hypervolume_after": hv_after, "seconds": round(time.perf_counter() - t0, 3),
        "state": "done",
    })
    store.set_extra("finetune", summary)
    return summary
