"""``paretonas serve`` (API + embedded workers) and ``paretonas worker``."""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import signal
import sys
import time

log = logging.getLogger(__name__)


def _worker_process(exit_when_idle: bool, parent_pid: int | None = None) -> None:
    """One worker: until the queue is empty (``exit_when_idle``), a signal, or, when
    ``parent_pid`` is given (embedded/spawned workers), the death of that process."""
    from service.interfaces.worker_shutdown import WorkerShutdown, set_parent_death_signal

    if parent_pid is not None:
        # armed before the heavy imports below (seconds on a busy machine): a server that dies
        # meanwhile takes this worker with it, rather than leaving it to notice later
        set_parent_death_signal()
        if os.getppid() != parent_pid:
            return
    from service.interfaces.worker import Worker
    from service.persistence.db import Database
    from service.settings import get_settings

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if parent_pid is not None and settings.embedded_worker_nice:
        os.nice(settings.embedded_worker_nice)  # the server beside it answers requests first
    worker = Worker(Database(settings.database_url), settings)
    shutdown = WorkerShutdown(worker, grace_s=settings.shutdown_grace_seconds)
    shutdown.install_signals()
    if parent_pid is not None:
        shutdown.watch_parent(parent_pid)
    worker.run_forever(exit_when_idle=exit_when_idle)


def start_workers(n: int, *, exit_when_idle: bool = False) -> list[mp.Process]:
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch/DB state
    procs = [ctx.Process(target=_worker_process, args=(exit_when_idle, os.getpid()),
                         daemon=True, name=f"paretonas-worker-{i}") for i in range(n)]
    for p in procs:
        p.start()
    return procs


def stop_workers(procs: list[mp.Process]) -> None:
    """SIGTERM: each worker ends its trial (or abandons it after the grace time) and gives its
    study back; one that still has not exited a few seconds later is killed."""
    from service.settings import get_settings

    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + get_settings().shutdown_grace_seconds + 5
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            log.warning("worker %s ignored SIGTERM; killing it", p.pid)
            p.kill()
            p.join(timeout=5)


def _exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so ``finally`` blocks (stopping the workers) run. Uvicorn
    re-raises a SIGTERM it handled once it has shut down; with the default action the server
    died right there and its workers were left running without it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def _open_database(settings) -> None:
    """Create/migrate the database now: a bad URL is a one-line error, before anything starts."""
    from service.interfaces.commands import CliError
    from service.persistence.db import DatabaseUnavailable, open_database

    try:
        open_database(settings.database_url).dispose()
    except DatabaseUnavailable as exc:
        raise CliError(str(exc)) from None


def _check_device_config(settings) -> None:
    """A broken config file (PARETONAS_CONFIG_FILE) is a one-line user error, before start."""
    from evaluators.profilers.devices import DeviceCatalog, DeviceError
    from service.interfaces.commands import CliError

    try:
        DeviceCatalog.from_config(settings.config_file)
    except DeviceError as exc:
        raise CliError(str(exc)) from exc


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.interfaces.api.app import create_app
    from service.persistence.db import shown_url
    from service.settings import get_settings

    _use_device(args.device)
    settings = get_settings()
    _check_device_config(settings)
    _check_listen(args.host, settings, insecure=args.insecure)
    _open_database(settings)  # migrate once before workers start
    _exit_on_sigterm()
    procs = start_workers(args.workers)
    log.info("API on http://%s:%s  (%d embedded workers, database %s)", args.host, args.port,
             args.workers, shown_url(settings.database_url))  # no password in the log
    try:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    finally:
        stop_workers(procs)
    return 0


def _check_listen(host: str, settings, *, insecure: bool) -> None:
    from service.interfaces.api.security import InsecureListenError, check_listen_address
    from service.interfaces.commands import CliError

    try:
        check_listen_address(host, settings, insecure=insecure)
    except InsecureListenError as exc:
        raise CliError(str(exc)) from exc


def _use_backend(args: argparse.Namespace) -> None:
    """--backend/--address become PARETONAS_* variables, which spawned workers inherit."""
    from service.interfaces.commands import CliError
    from service.settings import get_settings

    if args.address and (args.backend or get_settings().backend) != "ray":
        raise CliError("--address is the Ray cluster's address: use it with --backend ray")
    from service.engine.backends.ray_backend import check_address

    try:
        check_address(args.address or get_settings().ray_address)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if args.backend:
        os.environ["PARETONAS_BACKEND"] = args.backend
    if args.address:
        os.environ["PARETONAS_RAY_ADDRESS"] = args.address
    get_settings.cache_clear()


def _use_device(device: str | None) -> None:
    """--device (else PARETONAS_DEVICE) checked on this machine now, then passed to the worker
    processes as PARETONAS_DEVICE (studies whose compute.device is auto use it)."""
    from paretonas_core.compute import DEVICE_ENV, ComputeError, resolve_device, worker_device
    from service.interfaces.commands import CliError

    try:
        requested = device or worker_device()
        resolve_device(requested, where="--device" if device else DEVICE_ENV)
    except ComputeError as exc:
        raise CliError(str(exc)) from exc
    os.environ[DEVICE_ENV] = requested


def _worker(args: argparse.Namespace) -> int:
    from service.settings import get_settings

    _use_backend(args)
    _use_device(args.device)
    settings = get_settings()
    _check_device_config(settings)
    _open_database(settings)
    if args.concurrency == 1:
        _worker_process(args.exit_when_idle)
        return 0
    _exit_on_sigterm()
    procs = start_workers(args.concurrency, exit_when_idle=args.exit_when_idle)
    try:
        for p in procs:
            p.join()
    finally:
        stop_workers(procs)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the REST API and viewer with embedded workers")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, choices=range(0, 65), metavar="N",
                   help="embedded worker processes (0-64, default 1)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without PARETONAS_API_KEYS")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where the embedded workers train and evaluate (as worker --device)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("worker", help="run workers that take studies from the queue")
    p.add_argument("--concurrency", type=int, default=1, choices=range(1, 65), metavar="N",
                   help="worker processes (1-64, default 1)")
    p.add_argument("--exit-when-idle", action="store_true",
                   help="stop when the queue is empty instead of polling")
    p.add_argument("--backend", choices=["local", "ray"], default=None,
                   help="run every study here (local) or as Ray Tune trials (ray); default "
                        "PARETONAS_BACKEND, else local (a study may still ask for ray)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster this node belongs to ('auto', 'head:6379'; default "
                        "PARETONAS_RAY_ADDRESS, else a local Ray)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where studies train and evaluate unless they name a device: auto "
                        "(CUDA when torch sees a GPU, else CPU), cpu, cuda, cuda:N; default "
                        "PARETONAS_DEVICE, else auto")
    p.set_defaults(func=_worker)
