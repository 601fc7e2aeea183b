"""Soak: many clients polling, submitting and cancelling against ``paretonas serve --workers 2``.

Starts the server (PostgreSQL by default, in a fresh database that is dropped afterwards; or a
SQLite file) with its embedded workers on loopback, then ``--clients`` concurrent clients each
act once per ``--interval`` seconds for ``--duration`` seconds: mostly reads (study list, a
study, its new trials since last seen, its Pareto front, like open viewers), and with
probability ``--write-fraction`` a write (submit a table study, or cancel one). Afterwards the
server is stopped with SIGTERM (its workers give their studies back) and the database is
checked directly.

Prints JSON: p50/p99 latency per endpoint, errors (any non-2xx answer or failed request),
resident memory of the server and each worker after warm-up and at the end, and trials lost
(gaps in a study's trial numbers, counters that disagree with the rows, a completed study short
of its budget) or duplicated (two rows for one trial number). Targets (issue 22): 0 errors,
0 lost, p99 of reads < 50 ms on a quiet machine, no memory growth after warm-up. The load
generator shares the machine with the server.

Default run is short (60 s, for ``make bench``); the issue's soak is
    nice -n 10 python bench/soak.py --clients 50 --duration 600
(``--database sqlite`` for SQLite; ``PARETONAS_SOAK_PG_URL`` names the PostgreSQL server,
default ``PARETONAS_TEST_DATABASE_URL``, else the local paretonas/paretonas one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOCAL_PG = "postgresql+psycopg://paretonas:paretonas@127.0.0.1/paretonas"
READS = ("list", "study", "trials", "pareto")


def study_body(rng: random.Random, budget: int) -> dict:
    return {
        "name": f"soak {rng.randrange(10**6)}",
        "search_space": {"name": "table", "options": {
            "path": "digits_mlp.csv", "params": ["depth", "width", "activation", "alpha"]}},
        "objectives": [{"metric": "acc", "direction": "maximize"},
                       {"metric": "latency_ms", "direction": "minimize"}],
        "strategy": {"name": rng.choice(["random", "nsga2"])},
        "budget": {"trials": budget}, "seed": rng.randrange(1000),
    }


class Client:
    """One simulated user: follows a few studies, reads what changed, sometimes writes."""

    def __init__(self, http: httpx.AsyncClient, rng: random.Random, stats: dict, shared: dict,
                 *, write_fraction: float, budget: int):
        self.http, self.rng, self.stats, self.shared = http, rng, stats, shared
        self.write_fraction, self.budget = write_fraction, budget
        self.last_seen: dict[int, int] = {}

    async def call(self, name: str, method: str, path: str, **kw) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            r = await self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self.stats["errors"][name].append(f"{type(exc).__name__}: {exc}"[:200])
            return None
        self.stats["latency_ms"][name].append((time.perf_counter() - t0) * 1000)
        if not r.is_success:
            self.stats["errors"][name].append(f"{r.status_code}: {r.text[:200]}")
            return None
        return r

    async def act(self) -> None:
        ids = self.shared["ids"]
        if self.rng.random() < self.write_fraction:
            if ids and self.rng.random() < 0.5:
                sid = self.rng.choice(ids)
                await self.call("cancel", "POST", f"/api/v1/studies/{sid}/cancel")
                self.shared["cancelled"].add(sid)
            else:
                r = await self.call("submit", "POST", "/api/v1/studies",
                                    json=study_body(self.rng, self.budget))
                if r is not None:
                    ids.append(r.json()["id"])
            return
        what = self.rng.choice(READS) if ids else "list"
        if what == "list":
            await self.call("list", "GET", "/api/v1/studies?limit=20")
            return
        sid = self.rng.choice(ids[-20:])  # viewers look at recent studies
        if what == "study":
            await self.call("study", "GET", f"/api/v1/studies/{sid}")
        elif what == "trials":
            after = self.last_seen.get(sid, -1)
            r = await self.call("trials", "GET",
                                f"/api/v1/studies/{sid}/trials?after={after}&limit=500")
            if r is not None and (data := r.json()["data"]):
                self.last_seen[sid] = data[-1]["number"]
        else:
            await self.call("pareto", "GET", f"/api/v1/studies/{sid}/pareto")

    async def run(self, deadline: float, interval_s: float) -> None:
        await asyncio.sleep(self.rng.random() * interval_s)  # spread the clients out
        while (now := time.monotonic()) < deadline:
            await self.act()
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - now)))


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def worker_pids(server_pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                kids.append(int(child))
    return sorted(kids)


async def sample_memory(server_pid: int, out: list, stop: asyncio.Event, every_s: float):
    while not stop.is_set():
        pids = [server_pid, *worker_pids(server_pid)]
        out.append((time.monotonic(), {pid: rss_mb(pid) for pid in pids}))
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass


async def load(base: str, server_pid: int, args) -> tuple[dict, dict, list, float]:
    stats = {"latency_ms": defaultdict(list), "errors": defaultdict(list)}
    shared: dict = {"ids": [], "cancelled": set()}
    memory: list = []
    # drop idle connections before the server's 5 s keep-alive does, or a request may be
    # sent on a connection the server is closing (a ReadError that says nothing about it)
    limits = httpx.Limits(max_connections=args.clients, keepalive_expiry=3.0)
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        sampler = asyncio.create_task(sample_memory(server_pid, memory, stop, 5.0))
        started = time.monotonic()
        clients = [Client(http, random.Random(i), stats, shared,
                          write_fraction=args.write_fraction, budget=args.budget)
                   for i in range(args.clients)]
        await asyncio.gather(*(c.run(started + args.duration, args.interval) for c in clients))
        stop.set()
        await sampler
    return stats, shared, memory, started


def pct(values: list[float], q: int) -> float | None:
    if len(values) < 2:
        return round(values[0], 2) if values else None
    return round(statistics.quantiles(values, n=100)[q - 1], 2)


def memory_report(memory: list, started: float, warmup_s: float, server_pid: int) -> dict:
    """RSS per process: first sample after the warm-up, last sample, growth between."""
    warm = next((m for t, m in memory if t - started >= warmup_s), memory[-1][1])
    end = memory[-1][1]
    report = {}
    for pid in sorted(end):
        role = "server" if pid == server_pid else f"worker_{pid}"
        if pid in warm and warm[pid] is not None and end[pid] is not None:
            report[role] = {"warm_mb": warm[pid], "end_mb": end[pid],
                            "growth_mb": round(end[pid] - warm[pid], 1)}
    return report


def check_trials(url: str) -> dict:
    """Read the database directly: lost or duplicated trials, who still holds a lease."""
    from sqlalchemy import func, select

    from service.persistence.db import Database
    from service.persistence.models import Study, Trial

    db = Database(url)
    lost, duplicated, studies = [], 0, defaultdict(int)
    with db.session() as s:
        counts = dict(s.execute(select(Trial.study_id, func.count()).group_by(Trial.study_id))
                      .all())
        duplicated = s.scalar(select(func.count()).select_from(
            select(Trial.study_id, Trial.number).group_by(Trial.study_id, Trial.number)
            .having(func.count() > 1).subquery())) or 0
        leased = 0
        for study in s.scalars(select(Study)):
            studies[study.status] += 1
            leased += study.lease_owner is not None
            n_rows = counts.get(study.id, 0)
            top = s.scalar(select(func.max(Trial.number)).where(Trial.study_id == study.id))
            if n_rows != study.n_complete + study.n_failed or (top is not None and
                                                                 top + 1 != n_rows):
                lost.append(study.id)
            elif study.status == "completed" and n_rows != study.n_trials:
                lost.append(study.id)
        total = sum(counts.values())
    db.dispose()
    return {"studies": dict(studies), "trials": total, "studies_with_lost_trials": lost,
            "duplicated_trials": duplicated, "leases_held_after_stop": leased}


@contextmanager
def database(kind: str, tmp: str):
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/soak.db"
        return
    from sqlalchemy import create_engine, make_url, text

    admin_url = (os.environ.get("PARETONAS_SOAK_PG_URL")
                 or os.environ.get("PARETONAS_TEST_DATABASE_URL") or LOCAL_PG)
    name = f"paretonas_soak_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no PostgreSQL here: say so, as JSON, and stop
        print(json.dumps({"bench": "soak", "skipped": f"PostgreSQL at "
                          f"{make_url(admin_url).render_as_string()} unusable "
                          f"({str(exc).splitlines()[0]}); run with --database sqlite or set "
                          "PARETONAS_SOAK_PG_URL"}))
        raise SystemExit(0) from None
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(base: str, server: subprocess.Popen) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(base + "/api/v1/health", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between one client's actions")
    parser.add_argument("--write-fraction", type=float, default=0.04,
                        help="share of actions that submit or cancel a study")
    parser.add_argument("--budget", type=int, default=150, help="trials per submitted study")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()
    warmup_s = min(60.0, args.duration / 4)
    with tempfile.TemporaryDirectory() as tmp, database(args.database, tmp) as url:
        port = free_port()
        env = {**os.environ, "PARETONAS_DATABASE_URL": url, "OMP_NUM_THREADS": "1"}
        server = subprocess.Popen(
            [sys.executable, "-m", "service.interfaces.cli",
             "serve", "--workers", str(args.workers),
             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base, server)
            stats, shared, memory, started = asyncio.run(load(base, server.pid, args))
            workers = worker_pids(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        workers_left = [pid for pid in workers if rss_mb(pid) is not None]
        trials = check_trials(url)
    latency, errors = stats["latency_ms"], stats["errors"]
    reads = [v for k in READS for v in latency.get(k, [])]
    print(json.dumps({
        "bench": "soak", "database": args.database, "clients": args.clients,
        "duration_s": args.duration, "interval_s": args.interval, "workers": args.workers,
        "requests": sum(map(len, latency.values())) + sum(map(len, errors.values())),
        "errors": sum(map(len, errors.values())),
        "error_examples": {k: v[:3] for k, v in errors.items() if v},
        "reads": {"n": len(reads), "p50_ms": pct(reads, 50), "p99_ms": pct(reads, 99),
                  "target_p99_ms": 50},
        "endpoints": {k: {"n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99),
                          "errors": len(errors.get(k, []))} for k, v in sorted(latency.items())},
        "memory": {"warmup_s": warmup_s, **memory_report(memory, started, warmup_s,
                                                                 server.pid)},
        "submitted": len(shared["ids"]), "cancel_requests": len(shared["cancelled"]),
        "workers_alive_after_server_stop": len(workers_left),
        **trials,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
