"""Helpers shared by the browser tests and ``bench/viewer.py``: a live uvicorn server on a free
loopback port, Debian's headless chromium through Playwright, and a benchmark table."""

from __future__ import annotations

import csv
import hashlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def launch_chromium(playwright: Any):
    """Debian's chromium, headless (``playwright install`` is never used)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


class LiveServer:
    """Runs an ASGI app with uvicorn in a daemon thread on a free 127.0.0.1 port."""

    def __init__(self, app: Any):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
            name="live-server",
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def _noise(*parts: object) -> float:
    """Deterministic pseudo-noise in [0, 1) from the arch, so fronts are not trivially ordered."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def write_bench_table(path: Path, *, holes: bool = False) -> Path:
    """A 144-row NAS-Bench-like table: depth x width x op x kernel -> acc, latency_ms, params.

    With ``holes`` the 4 rows (depth 4, pool, kernel 7) are missing, so those archs fail.
    """
    rows = []
    for depth in (1, 2, 3, 4):
        for width in (8, 16, 32, 64):
            for op in ("conv", "sep", "pool"):
                for kernel in (3, 5, 7):
                    if holes and (depth, op, kernel) == (4, "pool", 7):
                        continue
                    capacity = depth * width * (1.0 if op == "conv" else 0.6 if op == "sep"
                                                else 0.2) * kernel / 5
                    acc = 0.55 + 0.4 * (1 - 1 / (1 + capacity / 40)) + 0.03 * _noise(
                        depth, width, op, kernel, "acc")
                    latency = 0.4 + capacity * 0.05 * (1 + 0.3 * _noise(depth, width, op, kernel))
                    params = int(depth * width * width * kernel * kernel * (op != "pool"))
                    rows.append({"depth": depth, "width": width, "op": op, "kernel": kernel,
                                 "acc": round(acc, 5), "latency_ms": round(latency, 4),
                                 "params": params})
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def bench_spec(name: str, *, trials: int, seed: int = 0, strategy: str = "random",
               three: bool = False) -> dict[str, Any]:
    """A study on the table written by :func:`write_bench_table` (file ``bench.csv``)."""
    objectives = [{"metric": "acc", "direction": "maximize"},
                  {"metric": "latency_ms", "direction": "minimize"}]
    if three:
        objectives.append({"metric": "params", "direction": "minimize"})
    return {
        "name": name,
        "search_space": {"name": "table", "options": {
            "path": "bench.csv", "params": ["depth", "width", "op", "kernel"]}},
        "objectives": objectives,
        "strategy": {"name": strategy},
        "budget": {"trials": trials},
        "seed": seed,
    }
