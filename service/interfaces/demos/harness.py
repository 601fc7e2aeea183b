"""What every demo does around its study: start ``paretonas serve`` in a child process, submit a
study and follow it, print the viewer URL and optionally keep serving."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from service.interfaces.client import Client


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
