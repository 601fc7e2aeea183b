"""How a worker process stops: on a signal, or when the process that started it is gone.

* SIGTERM or SIGINT: finish the current trial, give the study back to the queue, exit. If the
  trial has not ended ``grace_s`` seconds later (or the same signal comes again), abandon it:
  give the study back mid-trial and exit at once. Either way the next worker resumes the study
  without waiting for a lease to expire.
* An embedded worker (``paretonas serve --workers N``) must not outlive its server, however the
  server ends: on Linux the kernel sends it SIGTERM when the parent dies (``PR_SET_PDEATHSIG``,
  which also covers SIGKILL of the server), and a watch thread compares ``getppid()`` with the
  server's pid once a second (other systems, and a parent that died before ``prctl``).

No lock is ever taken inside a signal handler. A Python handler runs between two bytecodes of
the main thread, which may be holding the very lock it would take: ``Event.set()`` in a handler
that interrupted ``Event.wait()`` re-acquiring its condition deadlocked the whole worker (every
thread waiting on a futex, the hard-exit timer included), which is how embedded workers outlived
a SIGKILLed server on loaded CI machines. Instead the interpreter's C-level handler writes the
signal number to a pipe (``signal.set_wakeup_fd``) and a relay thread reads it and sets the
events; database work happens on other threads, never inside a handler.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this module must stay light: a spawned worker imports it before torch
    from service.interfaces.worker import Worker

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h

#: once the grace time is over, how long giving the study back may take before the process
#: exits anyway (the study's lease then expires instead): a stop must end in bounded time
ABANDON_TIMEOUT_S = 15.0


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent exits; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _do_nothing(_signum: int, _frame) -> None:
    pass


class WorkerShutdown:
    """Stops a ``Worker`` gracefully, then firmly (see the module docstring)."""

    def __init__(self, worker: Worker, *, grace_s: float):
        self.worker = worker
        self.grace_s = grace_s
        self.hurry = threading.Event()
        self._first_signal: int | None = None
        threading.Thread(target=self._enforce, daemon=True, name="shutdown").start()

    def request(self, reason: str) -> None:
        if not self.worker.stop.is_set():
            log.info("worker %s stopping (%s)", self.worker.worker_id, reason)
        self.worker.stop.set()

    def install_signals(self) -> None:
        """SIGTERM/SIGINT stop the worker (see the module docstring); main thread only."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # a full pipe drops a byte, never blocks a handler
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT):
            # the handler must exist (else the default action kills the process) and must do
            # nothing: the byte the C handler wrote to the pipe is what the relay acts on
            signal.signal(sig, _do_nothing)
        threading.Thread(target=self._relay, args=(read_fd,), daemon=True,
                         name="signals").start()

    def _relay(self, read_fd: int) -> None:
        while True:
            for signum in os.read(read_fd, 64):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self._on_signal(signum)

    def _on_signal(self, signum: int) -> None:
        if self._first_signal == signum:  # the same signal twice: don't wait for the trial
            self.hurry.set()
        self._first_signal = self._first_signal or signum
        self.worker.stop.set()

    def watch_parent(self, parent_pid: int) -> None:
        """Stop when ``parent_pid`` is no longer our parent (it died; we were re-parented)."""
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent_pid:  # it died before prctl could arm the signal
            self.request("server gone")

        def watch() -> None:
            while not self.worker.stop.wait(1.0):
                if os.getppid() != parent_pid:
                    self.request("server gone")

        threading.Thread(target=watch, daemon=True, name="parent-watch").start()

    def _enforce(self) -> None:
        """Once stopping, give the worker ``grace_s`` to end its trial; then abandon it."""
        self.worker.stop.wait()
        if self.hurry.wait(self.grace_s):
            log.warning("worker %s: asked twice, abandoning the current trial",
                        self.worker.worker_id)
        else:
            log.warning("worker %s: trial still running %.0f s after the stop; abandoning it",
                        self.worker.worker_id, self.grace_s)
        # a hard deadline: giving back waits on the database (a lock, a pool slot), and a
        # worker that hangs there would outlive its server after all
        deadline = threading.Timer(ABANDON_TIMEOUT_S, os._exit, args=(1,))
        deadline.daemon = True
        deadline.start()
        self.worker.abandon()
        logging.shutdown()
        os._exit(0)
