"""Workers stop with their server, however it stops, and give their study back; ``paretonas
worker`` stops gracefully on SIGTERM (issue 22: an embedded worker outlived a SIGTERMed server
and kept running its study). Real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from service.persistence.db import Database
from service.persistence.models import Study, Trial
from tests.conftest import table_spec
from tests.service.helpers import brute_force_front
from tests.service.live import free_port


def _env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    # a long lease: the study must be given back at once, not found again after expiry
    return {**os.environ, "PARETONAS_DATABASE_URL": database_url,
            "PARETONAS_DATA_DIRS": str(data_dir), "PARETONAS_LEASE_SECONDS": "300",
            "PARETONAS_HEARTBEAT_SECONDS": "0.5", "PARETONAS_POLL_SECONDS": "0.1", **extra}


def _alive(pid: int) -> bool:
    """Running, and not a zombie (re-parented children may never be reaped here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _where(pids: list[int]) -> str:
    """Where each live process waits (state, kernel wait channel, threads): for a failure."""
    out = []
    for pid in filter(_alive, pids):
        try:
            proc = Path(f"/proc/{pid}")
            threads = [((t / "comm").read_text().strip(), (t / "wchan").read_text())
                       for t in (proc / "task").iterdir()]
            out.append(f"{pid}: {threads}")
        except OSError:
            continue
    return "; ".join(out) or "none alive"


def _worker_children(pid: int) -> list[int]:
    """Worker processes the server spawned (not multiprocessing's resource tracker)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                kids.append(int(child))
    return kids


def _finished(db: Database, sid: int) -> int:
    with db.session() as s:
        return s.get(Study, sid).n_finished


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited: {proc.log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _check_given_back_whole(db: Database, sid: int) -> int:
    """Nobody owns the study, nothing writes to it any more, no trial is lost or doubled."""
    before = _finished(db, sid)
    time.sleep(1.5)
    with db.session() as s:
        study = s.get(Study, sid)
        numbers = s.scalars(select(Trial.number).where(Trial.study_id == sid)).all()
        assert study.lease_owner is None and study.status == "queued", \
            (study.status, study.lease_owner)
        assert study.n_finished == before, "a worker still runs the study"
    assert sorted(numbers) == list(range(before))
    return before


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_embedded_workers_stop_with_the_server(database_url, data_dir, tmp_path, how):
    db = Database(database_url)
    port = free_port()
    # the log goes to a file, not a pipe: nobody drains a pipe while the test waits, and a full
    # one blocks every process writing to it, the orphaned workers' last log lines included
    log = tmp_path / "server.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "service.interfaces.cli",
             "serve", "--workers", "2", "--port", str(port)],
            env=_env(database_url, data_dir), stdout=subprocess.DEVNULL, stderr=log_file)
    server.log = log
    try:
        url = f"http://127.0.0.1:{port}/api/v1"

        def up() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(up, 60, "the server", server)
        r = httpx.post(f"{url}/studies", json=table_spec(budget={"trials": 90_000}), timeout=60)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        _wait_for(lambda: _finished(db, sid) >= 20, 60, "trials", server)
        workers = _worker_children(server.pid)
        assert len(workers) == 2
        # embedded workers yield the CPU to the server's requests (embedded_worker_nice)
        assert {os.getpriority(os.PRIO_PROCESS, w) for w in workers} == {
            min(19, os.getpriority(os.PRIO_PROCESS, server.pid) + 5)}  # 19: the kernel's cap
        server.send_signal(how)
        server.wait(30)
        # bound: the 10 s grace, then abandoning (a database write that may wait for a lock)
        try:
            _wait_for(lambda: not any(_alive(w) for w in workers), 60, "the workers to exit")
        except AssertionError as exc:
            where, tail = _where(workers), log.read_text()[-3000:]
            raise AssertionError(f"{exc}; {where}; log: {tail}") from None
        assert _check_given_back_whole(db, sid) < 90_000
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        db.dispose()


def _start_worker(database_url: str, data_dir: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "service.interfaces.cli", "worker",
                             "--exit-when-idle"],
                            env=_env(database_url, data_dir, **extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _submit(db: Database, spec: dict) -> int:
    from service.engine.resolve import resolve_spec
    from service.engine.spec import StudySpec
    from service.persistence import crud

    with db.session() as s:
        return crud.create_study(s, resolved=resolve_spec(StudySpec.model_validate(spec))).id


def test_worker_sigterm_gives_the_study_back_for_the_next_worker(database_url, data_dir):
    db = Database(database_url)
    budget = 600
    spec = table_spec(budget={"trials": budget})
    sid = _submit(db, spec)
    first = _start_worker(database_url, data_dir)
    _wait_for(lambda: _finished(db, sid) >= 20, 120, "trials", first)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 0, err.decode()[-3000:]
    assert "back in the queue" in err.decode()
    stopped_at = _check_given_back_whole(db, sid)
    assert stopped_at < budget

    second = _start_worker(database_url, data_dir)  # no lease to wait out: claims at once
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()[-3000:]
    with db.session() as s:
        study = s.get(Study, sid)
        rows = s.scalars(select(Trial).where(Trial.study_id == sid)).all()
        assert study.status == "completed", study.error
        trials = [{"number": t.number, "arch_key": t.arch_key, "state": t.state,
                   "values": t.values} for t in rows]
        front = {t.number for t in rows if t.on_front}
        assert len({t.worker for t in rows}) == 2
    assert sorted(t["number"] for t in trials) == list(range(budget))
    assert front == brute_force_front(trials, spec)
    db.dispose()


def test_a_worker_past_its_grace_time_abandons_the_trial(database_url, data_dir):
    """Grace 0: the stop cannot wait for any trial; the study is given back mid-trial."""
    db = Database(database_url)
    sid = _submit(db, table_spec(budget={"trials": 90_000}))
    worker = _start_worker(database_url, data_dir, PARETONAS_SHUTDOWN_GRACE_SECONDS="0")
    _wait_for(lambda: _finished(db, sid) >= 20, 120, "trials", worker)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err.decode()[-3000:]
    assert "abandoning" in err.decode()
    _check_given_back_whole(db, sid)
    db.dispose()
