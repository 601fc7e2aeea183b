"""``make demo``: start the service (SQLite, local workers), submit a real study, follow it with
a progress bar, print the front and the viewer URL. Until a supernet is available it runs the
table space on the digits-MLP table the project ships (search_spaces/data/digits_mlp.csv)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from service.interfaces.client import Client

DEMO_SPEC = {
    "name": "demo: digits MLPs, accuracy vs CPU latency",
    "search_space": {"name": "table", "options": {
        "path": "digits_mlp.csv", "params": ["depth", "width", "activation", "alpha"],
        "metrics": ["acc", "latency_ms", "params"]}},
    "objectives": [{"metric": "acc", "direction": "maximize"},
                   {"metric": "latency_ms", "direction": "minimize"}],
    "constraints": [{"metric": "params", "max": 20000}],
    "strategy": {"name": "nsga2", "options": {"population_size": 10}},
    "budget": {"trials": 60},
    "seed": 0,
}


def wait_until_up(client: Client, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with status {proc.returncode}")
        try:
            client.health()
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    sys.exit("the server did not come up")


@contextmanager
def running_service(env: dict[str, str], *, port: int, workers: int) -> Iterator[Client]:
    """``paretonas serve`` in a child process for the duration of the block."""
    proc = subprocess.Popen([sys.executable, "-m", "service.interfaces.cli",
                             "serve", "--port", str(port),
                             "--workers", str(workers)], env=env)
    try:
        client = Client(f"http://127.0.0.1:{port}")
        wait_until_up(client, proc)
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def run_study(client: Client, spec: dict) -> tuple[dict, list[dict]]:
    """Submit ``spec``, follow it with a progress bar; return the study and its front."""
    study = client.submit(spec)
    print(f"submitted study {study['id']}: {study['name']}")
    study = client.wait(study["id"])
    hv = study["best_hypervolume"]
    print(f"study {study['id']} {study['status']}: {study['n_complete']} trials, "
          f"hypervolume {'-' if hv is None else format(hv, '.4g')}")
    if study.get("error"):
        print(f"error: {study['error']}")
    return study, client.pareto(study["id"])


def finish(client: Client, study: dict, *, keep_serving: bool) -> int:
    print(f"viewer: {client.base_url}/studies/{study['id']}")
    if keep_serving:
        print("serving until Ctrl-C")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0 if study["status"] == "completed" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep-serving", action="store_true",
                        help="leave the server running for the viewer (Ctrl-C to stop)")
    args = parser.parse_args()
    workdir = Path(".paretonas")
    workdir.mkdir(exist_ok=True)
    env = {**os.environ,
           "PARETONAS_DATABASE_URL": os.environ.get(
               "PARETONAS_DATABASE_URL", f"sqlite:///{workdir.resolve() / 'demo.db'}")}
    with running_service(env, port=args.port, workers=2) as client:
        study, front = run_study(client, DEMO_SPEC)
        print(f"Pareto front ({len(front)} trials):")
        for t in sorted(front, key=lambda t: t["values"]["latency_ms"]):
            print(f"  acc={t['values']['acc']:.4f}  latency_ms={t['values']['latency_ms']:.4f}"
                  f"  {t['arch']}")
        return finish(client, study, keep_serving=args.keep_serving)


if __name__ == "__main__":
    sys.exit(main())
