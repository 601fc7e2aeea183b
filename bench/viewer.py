"""Time until a study page with 10,000 trials is drawn and interactive, in headless chromium.

A real study row and 10,000 trial rows (arch, values, device measurements with samples, front
flags from ``pareto_mask``, hypervolume history) are written through the ORM into a temporary
SQLite database; the real app serves it with uvicorn on loopback; Debian's chromium opens
``/studies/{id}``. "Drawn and interactive" = the page's ``viewer-ready`` performance mark, set
once every trial is plotted and the click handlers are attached (measured from navigation start).
Then a real mouse hover over a front point is timed until Plotly's hover label shows.

Cold = fresh browser context (nothing cached); warm = reload in the same context (plotly.js
cached, data fetched again). Target: < 1500 ms. Next to wall times, the renderer's CPU time until
ready (Chrome's ThreadTime/ProcessTime metrics) and the load average are reported: on a shared
machine wall time mostly measures the other processes.
Run: python bench/viewer.py [--trials 10000] [--runs 5]   (prints JSON)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.engine.spec import StudySpec  # noqa: E402
from service.persistence.db import Database  # noqa: E402
from service.persistence.models import HypervolumePoint, Study, Trial  # noqa: E402
from surrogate.pareto import default_reference, hypervolume, pareto_mask, to_loss  # noqa: E402
from tests.browser.harness import CHROMIUM, LiveServer, launch_chromium  # noqa: E402

log = logging.getLogger("bench.viewer")

TARGET_MS = 1500.0
DIMS = {"depth_1": [1, 2, 3], "depth_2": [1, 2, 3, 4], "width_1": [16, 24, 32, 48],
        "width_2": [32, 48, 64, 96], "kernel": [3, 5, 7], "expand": [3, 4, 6]}
SPEC = {
    "name": "bench: 10k trials", "search_space": {"name": "table", "options": {
        "path": "bench.csv", "params": list(DIMS)}},
    "objectives": [{"metric": "acc", "direction": "maximize"},
                   {"metric": "latency_ms", "device": "cpu", "direction": "minimize"}],
    "constraints": [{"metric": "params", "max": 2.0e6}],
    "strategy": {"name": "nsga2"}, "budget": {"trials": 10000}, "seed": 0,
}


def _rows(n: int, seed: int = 0) -> tuple[list[dict], np.ndarray]:
    """Trials shaped like a real device study: accuracy, latency with samples, params."""
    rng = np.random.default_rng(seed)
    out, values = [], []
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(n):
        arch = {k: v[int(rng.integers(len(v)))] for k, v in DIMS.items()}
        cap = ((arch["depth_1"] * arch["width_1"] + arch["depth_2"] * arch["width_2"])
               * arch["kernel"] * arch["expand"] / 100)
        acc = 0.6 + 0.35 * (1 - np.exp(-cap / 40)) + rng.normal(0, 0.01)
        samples = (0.2 + cap * 0.02) * (1 + rng.gamma(2, 0.02, size=20))
        latency = float(np.median(samples))
        params = float(cap * 9000)
        values.append((acc, latency))
        failed = rng.random() < 0.01
        out.append({
            "number": i, "arch": arch,
            "arch_key": hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest(),
            "values": {} if failed else {"acc": round(float(acc), 5),
                                         "latency_ms@cpu": round(latency, 4), "params": params},
            "state": "failed" if failed else "complete",
            "error": "profiler: benchmark-injected failure" if failed else None,
            "info": {} if failed else {
                "sources": {"acc": "measured", "latency_ms@cpu": "measured",
                            "params": "computed"},
                "costs": {"params": params, "macs": params * 40},
                "devices": {"cpu": {"metrics": {"latency_ms": latency},
                                    "samples_ms": [round(float(s), 4) for s in samples],
                                    "details": {"threads": 1}, "profiler": "torch-cpu",
                                    "profiler_version": "1"}}},
            "worker": "bench", "duration_s": float(rng.uniform(0.05, 0.5)),
            "started_at": start + dt.timedelta(seconds=i),
            "finished_at": start + dt.timedelta(seconds=i + 0.3),
        })
    return out, np.array(values)


def build_database(url: str, n: int) -> tuple[int, int, int]:
    """Write one completed study with ``n`` trials; returns (study id, complete, front size)."""
    StudySpec.model_validate(SPEC)
    rows, _ = _rows(n)
    ok = [r for r in rows if r["state"] == "complete" and r["values"]["params"] <= 2.0e6]
    loss = to_loss(np.array([[r["values"]["acc"], r["values"]["latency_ms@cpu"]] for r in ok]),
                   ["maximize", "minimize"])
    mask = pareto_mask(loss)
    for r, on in zip(ok, mask, strict=True):
        r["on_front"] = bool(on)
    reference = default_reference(loss[:10])
    history, front = [], np.empty((0, 2))
    for r, row in zip(ok, loss, strict=True):  # hypervolume after each trial joining the front
        if len(front) and np.any(np.all(front <= row, axis=1) & np.any(front < row, axis=1)):
            continue
        front = np.vstack([front[~np.all(row <= front, axis=1)], row])
        history.append((r["number"], hypervolume(front, reference)))
    db = Database(url)
    with db.session() as s, s.begin():
        study = Study(name=SPEC["name"], search_space="table", spec=SPEC, status="completed",
                      n_trials=n, n_complete=sum(r["state"] == "complete" for r in rows),
                      n_failed=sum(r["state"] == "failed" for r in rows),
                      best_hypervolume=history[-1][1], reference_point=reference.tolist(),
                      extra={"units": {"latency_ms@cpu": "ms"}})
        s.add(study)
        s.flush()
        s.add_all(Trial(study_id=study.id, **r) for r in rows)
        s.add_all(HypervolumePoint(study_id=study.id, trial_number=t, hypervolume=h)
                  for t, h in history)
        study_id = study.id
    db.dispose()
    return study_id, sum(r["state"] == "complete" for r in rows), int(mask.sum())


HOVER_XY = """() => {
  const gd = document.getElementById('scatter'), fl = gd._fullLayout;
  const tr = gd._fullData.find((d) => d.uid === 'front');
  const box = gd.getBoundingClientRect();
  return [box.left + fl._size.l + fl.xaxis.l2p(tr.x[0]),
          box.top + fl._size.t + fl.yaxis.l2p(tr.y[0])];
}"""
TIMINGS = """() => {
  const ready = performance.getEntriesByName('viewer-ready')[0].startTime;
  const res = performance.getEntriesByType('resource');
  const trials = res.find((r) => r.name.includes('/points'));
  const data = performance.getEntriesByName('viewer-data')[0].startTime;
  const plotly = res.find((r) => r.name.includes('plotly.min.js'));
  const el = document.getElementById('scatter');
  return {ready, data, trials_fetch: trials ? trials.responseEnd - trials.startTime : null,
          plotly_loaded: plotly ? plotly.responseEnd : null,
          plotted: Number(el.dataset.plotted), front: Number(el.dataset.front),
          render: el.dataset.render};
}"""


def _cpu(cdp) -> dict[str, float]:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {k: metrics.get(k, 0.0) for k in ("ThreadTime", "ProcessTime")}


def measure(page, url: str, cdp) -> dict:
    before = _cpu(cdp)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
    after = _cpu(cdp)
    t = page.evaluate(TIMINGS)
    # CPU seconds of the page's renderer (main thread / whole process) until ready: unlike wall
    # time, hardly inflated by other processes competing for the cores. A navigation may start
    # a fresh renderer whose counters begin at zero.
    for key, name in (("ThreadTime", "main_thread_cpu"), ("ProcessTime", "renderer_cpu")):
        spent = after[key] - before[key] if after[key] >= before[key] else after[key]
        t[name] = spent * 1000
    x, y = page.evaluate(HOVER_XY)
    page.mouse.move(x - 40, y - 40)
    t0 = time.perf_counter()
    page.mouse.move(x, y)
    page.locator("#scatter .hoverlayer .hovertext").wait_for(timeout=10_000)
    t["hover"] = (time.perf_counter() - t0) * 1000
    return t


def summary(runs: list[dict], key: str) -> dict:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return {"median": round(statistics.median(vals), 1), "min": round(min(vals), 1),
            "max": round(max(vals), 1)} if vals else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not 1 <= args.trials <= 100_000 or not 1 <= args.runs <= 50:
        parser.error("--trials must be in 1..100000 and --runs in 1..50")
    if not CHROMIUM.exists():
        print(json.dumps({"bench": "viewer", "skipped": f"{CHROMIUM} is absent "
                          "(apt-get install -y chromium)"}))
        return 0
    logging.basicConfig(level=logging.WARNING)
    from playwright.sync_api import sync_playwright

    from service.interfaces.api.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/bench.db")
        t0 = time.perf_counter()
        study_id, complete, front = build_database(settings.database_url, args.trials)
        build_s = time.perf_counter() - t0
        db = Database(settings.database_url)
        app = create_app(settings, db=db)
        url = None
        cold, warm = [], []
        with LiveServer(app) as server, sync_playwright() as pw:
            url = f"{server.url}/studies/{study_id}"
            browser = launch_chromium(pw)
            for _ in range(args.runs):
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                page = ctx.new_page()
                cdp = ctx.new_cdp_session(page)
                cdp.send("Performance.enable")
                cold.append(measure(page, url, cdp))
                warm.append(measure(page, url, cdp))  # same context: plotly.js from cache
                ctx.close()
            browser.close()
        db.dispose()
    first = cold[0]
    if (first["plotted"], first["front"]) != (complete, front):
        log.error("page drew %s points / %s on the front; the database has %s / %s",
                  first["plotted"], first["front"], complete, front)
        return 1
    result = {
        "bench": "viewer",
        "trials": args.trials, "drawn_points": first["plotted"], "front_points": first["front"],
"render": first["render"], "runs": args.runs,
        "viewport": "1280x800", "browser": "chromium (Debian) headless, SwiftShader WebGL",
        "cpu_count": os.cpu_count(),
        "ready_ms_cold": summary(cold, "ready"), "ready_ms_warm": summary(warm, "ready"),
        "points_fetch_ms": summary(cold + warm, "trials_fetch"),
        "data_loaded_ms": summary(cold + warm, "data"),
        "plotly_loaded_ms_cold": summary(cold, "plotly_loaded"),
        "hover_label_ms": summary(cold + warm, "hover"),
        "main_thread_cpu_ms_cold": summary(cold, "main_thread_cpu"),
        "main_thread_cpu_ms_warm": summary(warm, "main_thread_cpu"),
        "renderer_cpu_ms_cold": summary(cold, "renderer_cpu"),
        "renderer_cpu_ms_warm": summary(warm, "renderer_cpu"),
        "load_avg_1m": [round(os.getloadavg()[0], 1), "on", os.cpu_count(), "cores"],
        "target_ms": TARGET_MS,
        "meets_target_cold": statistics.median(r["ready"] for r in cold) < TARGET_MS,
        "meets_target_warm": statistics.median(r["ready"] for r in warm) < TARGET_MS,
        "db_build_s": round(build_s, 2),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
