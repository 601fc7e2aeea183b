"""Checks shared by service tests."""

from __future__ import annotations

import numpy as np

from surrogate.pareto import to_loss


def brute_force_front(trials: list[dict], spec: dict) -> set[int]:
    """Numbers of feasible, first-occurrence, non-dominated complete trials."""
    keys = [o["metric"] + (f"@{o['device']}" if o.get("device") else "")
            for o in spec["objectives"]]
    dirs = [o["direction"] for o in spec["objectives"]]
    seen: set[str] = set()
    cands = []
    for t in sorted(trials, key=lambda t: t["number"]):
        first = t["arch_key"] not in seen
        seen.add(t["arch_key"])
        if t["state"] != "complete" or not first:
            continue
        ok = all((c.get("max") is None or t["values"][c["metric"]] <= c["max"]) and
                 (c.get("min") is None or t["values"][c["metric"]] >= c["min"])
                 for c in spec.get("constraints", []))
        if ok:
            cands.append(t)
    if not cands:
        return set()
    loss = to_loss(np.array([[t["values"][k] for k in keys] for t in cands]), dirs)
    front = set()
    for i, t in enumerate(cands):
        if not any(np.all(loss[j] <= loss[i]) and np.any(loss[j] < loss[i])
                   for j in range(len(cands))):
            front.add(t["number"])
    return front


def cancel_once_complete(db, study_id: int, thread, n_complete: int, timeout: float) -> None:
    """Wait (up to ``timeout`` s) until the study has ``n_complete`` trials, request its
    cancellation, and wait for the worker ``thread`` to end."""
    import time

    from service.persistence.models import Study

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            if s.get(Study, study_id).n_complete >= n_complete:
                break
        time.sleep(0.02)
    with db.session() as s:
        s.get(Study, study_id).cancel_requested = True
        s.commit()
    thread.join(timeout)
    assert not thread.is_alive()


def run_queue(app) -> None:
    """Run every queued study of ``app`` to its end with one in-process worker."""
    from service.interfaces.worker import Worker

    worker = Worker(app.state.db, app.state.settings, worker_id="test-worker")
    while worker.run_once() is not None:
        pass
