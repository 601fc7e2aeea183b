"""A real server on a loopback port (uvicorn in a thread) with a worker thread beside it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from service.interfaces.api.app import create_app
from service.interfaces.worker import Worker
from service.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(settings: Settings, *, workers: int = 1) -> Iterator[str]:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    stop = threading.Event()
    worker_threads = [
        threading.Thread(target=Worker(app.state.db, settings).run_forever, args=(stop,),
                         daemon=True)
        for _ in range(workers)
    ]
    for t in worker_threads:
        t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        server.should_exit = True
        thread.join(10)
        for t in worker_threads:
            t.join(10)
        app.state.db.dispose()
