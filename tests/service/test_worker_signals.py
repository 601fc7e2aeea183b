"""A worker's signal handling cannot deadlock its process, however busy its main thread.

Regression: the handler used to call ``Event.set()``. A Python-level handler runs between two
bytecodes of the main thread; when that thread was inside ``Event.wait()`` holding the Event's
(non-reentrant) condition lock, ``set()`` waited on that lock forever, and so did every other
thread: the worker outlived a SIGKILLed server on a loaded CI machine. Here the main thread
does nothing but take that lock, so the old handler hung in most tries (7 of 10 measured).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUSY_WORKER = textwrap.dedent("""
    import sys, threading
    sys.path.insert(0, sys.argv[1])
    from service.interfaces.worker_shutdown import WorkerShutdown

    class Worker:  # what WorkerShutdown needs of service.interfaces.worker.Worker
        worker_id = "busy"
        def __init__(self):
            self.stop = threading.Event()
        def abandon(self):
            print("abandoned", flush=True)

    worker = Worker()
    WorkerShutdown(worker, grace_s=0.2).install_signals()
    print("ready", flush=True)
    while True:
        worker.stop.wait(0)  # takes and releases the Event's condition lock, again and again
""")


def start_busy_worker() -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", BUSY_WORKER, str(ROOT)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_stops_a_worker_whose_main_thread_holds_the_stop_lock(how):
    for attempt in range(5):
        proc = start_busy_worker()
        proc.send_signal(how)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"attempt {attempt}: the worker hung after {how.name}")
        # the stop went through the normal path: grace time over, trial abandoned, exit 0
        assert "abandoned" in out and proc.returncode == 0, (attempt, out, proc.returncode)
