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
from service.engine.checks import record_outcome, record_start_warnings
from service.engine.executors import make_executor
from service.engine.records import LeaseLost
from service.engine.resolve import SpecError, resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from service.persistence.db import Database
from service.persistence.devices import load_catalog
from service.persistence.measurement_cache import DbMeasurementCache
from service.persistence.models import Study
from service.persistence.queue import claim_study, finish_study, release_study, renew_lease
from service.persistence.store import DbStore
from service.settings import Settings

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
        #: set: finish the current trial (or abandon it, see ``abandon``), give the study back
        #: to the queue and return from ``run_forever``
        self.stop = threading.Event()
        self.current_study: int | None = None

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
            row = s.get(Study, study_id)
            raw_spec, submitted = row.spec, (row.extra or {}).get("warnings", [])
        store = DbStore(self.db, study_id, self.worker_id,
                        lease_seconds=self.settings.lease_seconds, shutdown=self.stop)
        heartbeat = Heartbeat(self.db, store, settings=self.settings)
        heartbeat.start()
        self.current_study = study_id
        status, error = "failed", None
        try:
            spec = StudySpec.model_validate(raw_spec)
            resolved = resolve_spec(spec, devices=self.device_catalog())
            record_start_warnings(store, resolved, submitted)
            outcome = self.make_runner(resolved, store).run()
            if outcome == "stopped" and self.stop.is_set() \
                    and not self._cancel_requested(study_id):
                self._give_back(study_id)  # we are shutting down; nobody cancelled the study
                return
            status = "cancelled" if outcome == "stopped" else "completed"
            record_outcome(store, spec)
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
            self.current_study = None
        finish_study(self.db, study_id, self.worker_id, status=status, error=error)

    def _cancel_requested(self, study_id: int) -> bool:
        with self.db.session() as s:
            return bool(s.get(Study, study_id).cancel_requested)

    def _give_back(self, study_id: int) -> None:
        if release_study(self.db, study_id, self.worker_id):
            log.info("worker %s stopping: study %s is back in the queue", self.worker_id,
                     study_id)

    def abandon(self) -> None:
        """Give the running study back now, mid-trial (its trial is lost, never half-saved:
        the lease check in ``save_trial`` refuses a write after this). For a stop that cannot
        wait for the trial to end; the process should exit right after."""
        study_id = self.current_study
        if study_id is not None:
            try:
                self._give_back(study_id)
            except Exception:  # the database is gone too: the lease will expire instead
                log.warning("worker %s: could not give study %s back", self.worker_id, study_id,
                            exc_info=True)

    def run_forever(self, stop: threading.Event | None = None, *, exit_when_idle: bool = False):
        if stop is not None:
            self.stop = stop
        stop = self.stop
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
