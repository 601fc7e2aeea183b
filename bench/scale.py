"""Throughput of the execution backends and API latency under load; prints JSON.

1. Trials per second on the table space (a shipped benchmark table: every trial is a row look-up,
   so the figures are the backends' own cost, not model evaluation), each trial persisted to a
   SQLite database through the same ``DbStore``:
   * local: ``StudyRunner`` in this process;
   * Ray: ``StudyRunner`` with a ``RayExecutor`` on a local Ray with 1 and 2 trials in flight.
   Each is run with two budgets (``--short``, ``--long`` trials); the slope between them is the
   cost per trial, the intercept the fixed cost per study (on Ray: mostly starting one trial
   actor per slot, a fresh Python process that imports torch and resolves the space; Tune reuses
   it for the study's later trials). Ray's overhead per trial = its per-trial cost minus the
   local one. Medians over ``--repeats``.
2. API p99: ``paretonas serve`` (uvicorn, SQLite, 1 embedded worker running a study meanwhile)
   hit by ``--clients`` threads reading study, trials, Pareto front and points; latency
   percentiles over all requests.

Run: python bench/scale.py [--short 10 --long 200 --repeats 3 --clients 8 --requests 50]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench.scale")

SPEC = {
    "name": "scale",
    "search_space": {"name": "table", "options": {
        "path": "digits_mlp.csv", "params": ["depth", "width", "activation", "alpha"],
        "metrics": ["acc", "latency_ms", "params"]}},
    "objectives": [{"metric": "acc", "direction": "maximize"},
                   {"metric": "latency_ms", "direction": "minimize"}],
    "strategy": {"name": "random"},
    "budget": {"trials": 10},
    "seed": 0,
}


def _spec(trials: int, seed: int) -> dict:
    return {**SPEC, "budget": {"trials": trials}, "seed": seed}


def _check_spec() -> None:
    """Fail early, with the reason, if the shipped table or its metrics changed."""
    from service.engine.resolve import SpecError, resolve_spec
    from service.engine.spec import StudySpec

    try:
        resolve_spec(StudySpec.model_validate(SPEC))
    except SpecError as exc:
        sys.exit(f"bench/scale.py: the benchmark study no longer resolves: {exc}")


def _run_study(tmp: Path, trials: int, seed: int, *, backend: str, concurrency: int) -> float:
    """Seconds to run one study of ``trials`` trials, persisted to a fresh SQLite database."""
    from service.engine.backends.ray_backend import RayExecutor, RayOptions
    from service.engine.resolve import resolve_spec
    from service.engine.runner import StudyRunner
    from service.engine.spec import StudySpec
    from service.persistence import crud
    from service.persistence.db import Database
    from service.persistence.queue import claim_study
    from service.persistence.store import DbStore

    db = Database(f"sqlite:///{tmp / f'{backend}-{concurrency}-{trials}-{seed}.db'}")
    resolved = resolve_spec(StudySpec.model_validate(_spec(trials, seed)))
    with db.session() as s:
        sid = crud.create_study(s, resolved=resolved).id
    claim_study(db, "bench", lease_seconds=600)
    store = DbStore(db, sid, "bench", lease_seconds=600)
    if backend == "local":
        runner = StudyRunner(resolved, store, worker_id="bench")
    else:
        runner = StudyRunner(resolved, store, worker_id="bench", executor=RayExecutor(
            resolved, RayOptions(max_concurrency=concurrency)))
    t0 = time.perf_counter()
    assert runner.run() == "completed"
    elapsed = time.perf_counter() - t0
    assert len(store.load_trials()) == trials
    db.dispose()
    return elapsed


def throughput(tmp: Path, *, short: int, long: int, repeats: int) -> dict:
    import ray

    results: dict[str, dict] = {}
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    ray_init_s = time.perf_counter() - t0
    try:
        for name, backend, conc in (("local", "local", 1), ("ray_1_worker", "ray", 1),
                                    ("ray_2_workers", "ray", 2)):
            # one warm-up study: imports, Ray actors' first start, SQLite files
            _run_study(tmp, 2, 999, backend=backend, concurrency=conc)
            times = {n: [] for n in (short, long)}
            for r in range(repeats):
                for n in (short, long):
                    times[n].append(_run_study(tmp, n, r, backend=backend, concurrency=conc))
            t_short, t_long = (statistics.median(times[n]) for n in (short, long))
            per_trial = (t_long - t_short) / (long - short)
            results[name] = {
                "trials_per_s": round(long / t_long, 2),
                "per_trial_ms": round(per_trial * 1000, 2),
                "fixed_per_study_s": round(max(t_short - short * per_trial, 0.0), 3),
                f"median_s_{short}_trials": round(t_short, 3),
                f"median_s_{long}_trials": round(t_long, 3),
            }
            log.info("%s: %s", name, results[name])
    finally:
        ray.shutdown()
    local = results["local"]["per_trial_ms"]
    for name in ("ray_1_worker", "ray_2_workers"):
        results[name]["overhead_per_trial_ms_vs_local"] = round(
            results[name]["per_trial_ms"] - local, 2)
        results[name]["slowdown_vs_local"] = round(
            results["local"]["trials_per_s"] / results[name]["trials_per_s"], 1)
    results["ray_init_s"] = round(ray_init_s, 2)
    return results


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_latency(tmp: Path, *, clients: int, requests_per_client: int) -> dict:
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARETONAS_")}
    env["PARETONAS_DATABASE_URL"] = f"sqlite:///{tmp / 'api.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "service.interfaces.cli",
         "serve", "--port", str(port), "--workers", "1"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        with httpx.Client(timeout=60) as c:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if c.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the API did not start")
                time.sleep(0.2)
            done = c.post(f"{base}/studies", json=_spec(300, 1)).json()["id"]
            while c.get(f"{base}/studies/{done}").json()["status"] != "completed":
                time.sleep(0.2)
            running = c.post(f"{base}/studies", json={**_spec(100_000, 2), "name": "busy"})
            running_id = running.json()["id"]  # the embedded worker writes while we read
        paths = [f"/studies/{done}", f"/studies/{done}/trials?limit=100",
                 f"/studies/{done}/pareto", f"/studies/{done}/points", "/studies?limit=50",
                 f"/studies/{running_id}"]
        latencies: list[float] = []
        errors = 0
        lock = threading.Lock()

        def client(i: int) -> None:
            nonlocal errors
            mine, bad = [], 0
            with httpx.Client(timeout=60) as c:
                for k in range(requests_per_client):
                    t0 = time.perf_counter()
                    r = c.get(base + paths[(i + k) % len(paths)])
                    mine.append(time.perf_counter() - t0)
                    bad += r.status_code != 200
            with lock:
                latencies.extend(mine)
                errors += bad

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        with httpx.Client(timeout=60) as c:
            c.post(f"{base}/studies/{running_id}/cancel")
        ms = sorted(x * 1000 for x in latencies)

        def pct(p: float) -> float:
            return round(ms[min(int(p / 100 * len(ms)), len(ms) - 1)], 1)

        return {"clients": clients, "requests": len(ms), "errors": errors,
                "requests_per_s": round(len(ms) / wall, 1), "p50_ms": pct(50), "p90_ms": pct(90),
                "p99_ms": pct(99), "max_ms": round(ms[-1], 1),
                "while": "one embedded worker running a study on the same SQLite database"}
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    args = parser.parse_args()
    if not 1 <= args.short < args.long:
        parser.error("need 1 <= --short < --long")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _check_spec()
    with tempfile.TemporaryDirectory(prefix="paretonas-bench-") as tmp:
        out = {
            "machine": {"cpus": os.cpu_count(), "note": "shared with other jobs"},
            "space": "table (shipped digits_mlp.csv), trials persisted to SQLite",
            "throughput": throughput(Path(tmp), short=args.short, long=args.long,
                                     repeats=args.repeats),
            "api": api_latency(Path(tmp), clients=args.clients,
                               requests_per_client=args.requests),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
