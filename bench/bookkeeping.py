"""Bookkeeping overhead per trial: everything the service does around an evaluation
(ask, tell, front/hypervolume update, the transaction that persists the trial), on the table
space where evaluation is a lookup, with the database-backed store on SQLite.

Prints JSON per strategy: median and p90 wall milliseconds per trial minus the evaluation (a
trial = from one saved trial to the next, as the store's observer sees it), the median CPU
milliseconds of the runner thread per trial (robust on a shared, loaded machine), the median time
of the persisting transaction, and the whole run's wall and CPU time over its trial count.
Target: median < 5 ms on SQLite.
Run: python bench/bookkeeping.py [--trials 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def spec_for(strategy: str, trials: int) -> dict:
    nbg = SHARED / "nas-bench-graph" / "nas_bench_graph_light.csv.gz"
    if nbg.exists():
        os.environ["PARETONAS_DATA_DIRS"] = str(SHARED)
        space = {"name": "table", "options": {
            "path": "nas-bench-graph/nas_bench_graph_light.csv.gz",
            "params": ["link", "op0", "op1", "op2", "op3"], "filter": {"dataset": "cora"},
            "metrics": ["valid_perf", "latency_ms"]}}
        objectives = [{"metric": "valid_perf", "direction": "maximize"},
                      {"metric": "latency_ms", "direction": "minimize"}]
    else:  # the table the project ships
        space = {"name": "table", "options": {
            "path": "digits_mlp.csv", "params": ["depth", "width", "activation", "alpha"]}}
        objectives = [{"metric": "acc", "direction": "maximize"},
                      {"metric": "latency_ms", "direction": "minimize"}]
    options = {"population_size": 20} if strategy.startswith("nsga") else {}
    return {"name": f"bench {strategy}", "search_space": space, "objectives": objectives,
            "strategy": {"name": strategy, "options": options},
            "budget": {"trials": trials}, "seed": 0}


def measure(strategy: str, trials: int, url: str) -> dict:
    from service.engine.resolve import resolve_spec
    from service.engine.runner import StudyRunner
    from service.engine.spec import StudySpec
    from service.persistence import crud
    from service.persistence.db import Database
    from service.persistence.queue import claim_study
    from service.persistence.store import DbStore

    db = Database(url)
    resolved = resolve_spec(StudySpec.model_validate(spec_for(strategy, trials)))
    with db.session() as s:
        sid = crud.create_study(s, resolved=resolved).id
    claim_study(db, "bench", lease_seconds=600)
    store = DbStore(db, sid, "bench", lease_seconds=600)
    runner = StudyRunner(resolved, store, worker_id="bench")
    per_trial, per_save, per_eval = [], [], []
    save, evaluate = store.save_trial, runner.executor.evaluator._evaluate

    cpu_per_trial: list[float] = []

    def timed(fn, sink):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                sink.append((time.perf_counter() - t0) * 1000)
        return wrapper

    # A trial's time = from the previous trial's save (or the loop's start) to its own: ask,
    # evaluation, tell, front update and persistence, as the store's observer sees it.
    last = [0.0, 0.0]

    def tick(record) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        per_trial.append((now - last[0]) * 1000)
        cpu_per_trial.append((cpu - last[1]) * 1000)
        last[:] = time.perf_counter(), time.thread_time()

    store.save_trial = timed(save, per_save)
    runner.executor.evaluator._evaluate = timed(evaluate, per_eval)
    store.add_observer(tick)
    start = runner.executor.start

    def start_clock(history):
        start(history)
        last[:] = time.perf_counter(), time.thread_time()

    runner.executor.start = start_clock
    t0, c0 = time.perf_counter(), time.thread_time()
    runner.run()
    run_wall, run_cpu = time.perf_counter() - t0, time.thread_time() - c0
    db.dispose()
    overhead = [t - e for t, e in zip(per_trial, per_eval + [0.0] * len(per_trial),
                                      strict=False)]
    q = statistics.quantiles(overhead, n=10)
    return {"trials": len(per_trial), "median_ms": round(statistics.median(overhead), 3),
            "p90_ms": round(q[-1], 3),
            # CPU time of the runner thread: what the trial costs when the machine is not shared
            "cpu_median_ms": round(statistics.median(cpu_per_trial), 3),
            "persist_median_ms": round(statistics.median(per_save), 3),
            # the whole run() over the trial count: set-up and every per-trial step, whatever
            # the loop's shape (comparable across versions of the runner)
            "run_wall_ms_per_trial": round(run_wall / len(per_trial) * 1000, 3),
            "run_cpu_ms_per_trial": round(run_cpu / len(per_trial) * 1000, 3),
            "evaluation_median_ms": round(statistics.median(per_eval), 4) if per_eval else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--strategies", default="random,nsga2,tpe")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategies.split(","):
            url = args.database_url or f"sqlite:///{tmp}/{strategy}.db"
            results[strategy] = measure(strategy, args.trials, url)
    backend = (args.database_url or "sqlite").split(":")[0]
    print(json.dumps({"bench": "bookkeeping_per_trial", "database": backend,
                      "target_median_ms": 5.0, "results": results}, indent=2))


if __name__ == "__main__":
    main()
