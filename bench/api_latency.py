"""API read latency under 50 concurrent clients on loopback.

Starts ``paretonas serve`` (no workers) on a SQLite file holding a finished study of 500 trials
on the project's table, then 50 concurrent clients each send a mix of reads (a study, the study
list, a page of 100 trials, the Pareto front), twice: *paced* (each client polls once per
``--interval`` seconds, like 50 open viewers) and *saturated* (each client fires its next request
as soon as the last returns: the server's throughput limit; latency there is queueing, by
Little's law clients / throughput). Prints JSON: p50/p99 per endpoint and overall, and requests
per second. Target: p99 < 50 ms for reads. The load generator shares the machine's 2 cores.
Run: python bench/api_latency.py [--clients 50] [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def populate(url: str) -> int:
    from service.engine.resolve import resolve_spec
    from service.engine.runner import StudyRunner
    from service.engine.spec import StudySpec
    from service.persistence import crud
    from service.persistence.db import Database
    from service.persistence.queue import claim_study
    from service.persistence.store import DbStore

    spec = StudySpec.model_validate({
        "name": "api bench", "search_space": {"name": "table", "options": {
            "path": "digits_mlp.csv", "params": ["depth", "width", "activation", "alpha"]}},
        "objectives": [{"metric": "acc", "direction": "maximize"},
                       {"metric": "latency_ms", "direction": "minimize"}],
        "strategy": {"name": "random"}, "budget": {"trials": 500}, "seed": 0})
    db = Database(url)
    resolved = resolve_spec(spec)
    with db.session() as s:
        sid = crud.create_study(s, resolved=resolved).id
    claim_study(db, "bench", lease_seconds=600)
    StudyRunner(resolved, DbStore(db, sid, "bench", lease_seconds=600), worker_id="bench").run()
    db.dispose()
    return sid


async def client_loop(
    http: httpx.AsyncClient, sid: int, n: int, out: dict, interval_s: float = 0.0
) -> None:
    paths = {"study": f"/api/v1/studies/{sid}", "list": "/api/v1/studies?limit=20",
             "trials": f"/api/v1/studies/{sid}/trials?limit=100",
             "pareto": f"/api/v1/studies/{sid}/pareto"}
    names = list(paths)
    if interval_s:  # spread the clients' start times over one interval
        await asyncio.sleep(random.random() * interval_s)
    for i in range(n):
        name = names[i % len(names)]
        t0 = time.perf_counter()
        r = await http.get(paths[name])
        elapsed = time.perf_counter() - t0
        out.setdefault(name, []).append(elapsed * 1000)
        r.raise_for_status()
        if interval_s:
            await asyncio.sleep(max(0.0, interval_s - elapsed))


def pct(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100)[q - 1], 2)


async def load(base: str, sid: int, clients: int, requests: int, interval_s: float) -> dict:
    out: dict[str, list[float]] = {}
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        # warm-up: open every client's connection first, so that connection set-up is not
        # counted as read latency (it would be 1 in every `requests` samples)
        await asyncio.gather(*(client_loop(http, sid, 1, {}) for _ in range(clients)))
        t0 = time.perf_counter()
        await asyncio.gather(
            *(client_loop(http, sid, requests, out, interval_s) for _ in range(clients))
        )
        elapsed = time.perf_counter() - t0
    every = [v for vs in out.values() for v in vs]
    return {
        "clients": clients, "requests": len(every), "interval_s": interval_s,
        "requests_per_s": round(len(every) / elapsed, 1),
        "overall": {"p50_ms": pct(every, 50), "p99_ms": pct(every, 99)},
        "endpoints": {k: {"p50_ms": pct(v, 50), "p99_ms": pct(v, 99)} for k, v in out.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between one client's requests in the paced run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/api.db"
        sid = populate(url)
        env = {**os.environ, "PARETONAS_DATABASE_URL": url}
        server = subprocess.Popen(
            [sys.executable, "-m", "service.interfaces.cli", "serve", "--workers", "0", "--port",
             str(args.port)], env=env, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{args.port}"
        try:
            for _ in range(200):
                try:
                    httpx.get(base + "/api/v1/health", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            result = {
                # each client polls every --interval seconds (50 viewers/dashboards)
                "paced": asyncio.run(load(base, sid, args.clients, args.requests,
                                          args.interval)),
                # each client sends its next request as soon as the last one is answered
                "saturated": asyncio.run(load(base, sid, args.clients, args.requests, 0.0)),
            }
        finally:
            server.terminate()
            server.wait(20)
    print(json.dumps({"bench": "api_read_latency", "database": "sqlite",
                      "target_p99_ms": 50, **result,
                      "load_average_1min": round(os.getloadavg()[0], 2)}, indent=2))


if __name__ == "__main__":
    main()
