"""Local workers: claim a study, run it with heartbeats, mark it finished; repeat.

The worker owns queueing concerns (lease, heartbeat, cancel, failure); the ``StudyRunner`` owns
the search; an ``Executor`` runs the evaluations: in this process, or as Ray Tune trials
(``paretonas worker --backend ray`` / ``"backend": "ray"`` in the spec).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from evaluators.profilers.devices import DeviceCatalog
from service.db import Database
from service.devices import load_catalog
from service.executors import make_executor
from service.measurement_cache import DbMeasurementCache
from service.models import Study
from service.queue import claim_study, finish_study, renew_lease
from service.records import LeaseLost
from service.resolve import SpecError, resolve_spec
from service.runner import StudyRunner
from service.settings import Settings
from service.spec import StudySpec
from service.store import DbStore

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Heartbeat(threading.Thread):
    """Renews the lease every ``period`` seconds; flags the store on cancel or lost lease."""

    def __init__(self, db: Database, store: DbStore, *, settings: Settings):
        super().__init__(daemon=True, name=f"heartbeat-{store.study_id}")
        self.db, self.store, self.settings = db, store, settings
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.settings.heartbeat_seconds):
            try:
                ours, cancel = renew_lease(
                    self.db, self.store.study_id, self.store.worker_id,
                    lease_seconds=self.settings.lease_seconds,
                )
            except Exception:  # a dropped connection: try again next beat
                log.warning("heartbeat for study %s failed", self.store.study_id, exc_info=True)
                continue
            if not ours:
                self.store.lease_lost.set()
                return
            if cancel:
                self.store.cancel_requested.set()


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        worker_id: str | None = None,
        devices: DeviceCatalog | None = None,
    ):
        self.db = db
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.devices = devices

    def device_catalog(self) -> DeviceCatalog:
        return self.devices or load_catalog(self.db, self.settings)

    def run_once(self) -> int | None:
        """Claim and run one study; return its id, or None when the queue is empty."""
        study_id = claim_study(self.db, self.worker_id, lease_seconds=self.settings.lease_seconds)
        if study_id is None:
            return None
        log.info("worker %s runs study %s", self.worker_id, study_id)
        self.run_study(study_id)
        return study_id

    def make_runner(self, resolved, store: DbStore) -> StudyRunner:
        """The study loop on the executor this worker or the study asks for."""
        executor = make_executor(
            resolved, backend=self.settings.backend, cache=DbMeasurementCache(self.db),
            cache_url=self.db.url, ray_address=self.settings.ray_address,
            ray_device_resources=self.settings.ray_device_resources,
        )
        return StudyRunner(resolved, store, worker_id=self.worker_id, executor=executor)

    def run_study(self, study_id: int) -> None:
        with self.db.session() as s:
            raw_spec = s.get(Study, study_id).spec
        store = DbStore(
            self.db, study_id, self.worker_id, lease_seconds=self.settings.lease_seconds
        )
        heartbeat = Heartbeat(self.db, store, settings=self.settings)
        heartbeat.start()
        status, error = "failed", None
        try:
            spec = StudySpec.model_validate(raw_spec)
            resolved = resolve_spec(spec, devices=self.device_catalog())
            outcome = self.make_runner(resolved, store).run()
            status = "cancelled" if outcome == "stopped" else "completed"
        except LeaseLost as exc:
            log.warning("worker %s: %s; leaving the study to its new owner", self.worker_id, exc)
            return
        except (SpecError, ValidationError) as exc:
            error = f"invalid study: {exc}"
        except OperationalError as exc:  # database restarted/unreachable: not the study's fault
            log.warning("worker %s: database error in study %s (%s); leaving it to be resumed "
                        "when its lease expires", self.worker_id, study_id, exc.orig)
            return
        except Exception as exc:
            log.error("study %s failed:\n%s", study_id, traceback.format_exc())
            error = f"{type(exc).__name__}: {exc}"
        finally:
            heartbeat.stopped.set()
        finish_study(self.db, study_id, self.worker_id, status=status, error=error)

    def run_forever(self, stop: threading.Event | None = None, *, exit_when_idle: bool = False):
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # database unreachable: wait and retry, never die
                log.warning("worker %s: queue poll failed", self.worker_id, exc_info=True)
                ran = None
            if ran is None:
                if exit_when_idle:
                    return
                stop.wait(self.settings.poll_seconds)
