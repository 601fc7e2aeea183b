"""Ray backend: a study's trials run as Ray Tune trials, in parallel across a Ray cluster.

The driver (the worker process that holds the study's lease) keeps everything that must be
exactly-once: the Optuna study (the strategy's sampler, asked and told here through a Tune
``Searcher``), the Pareto front, and persistence through the same ``TrialStore`` as the local
runner, one transaction per finished trial as it completes. Ray only evaluates: each Tune trial
gets an arch, resolves the study spec once per Ray worker process, and returns the metric values.
So a crash loses at most the trials in flight, and resume is the local runner's (rebuild the
Optuna study from the persisted trials, run the rest of the budget).

Trials are numbered in completion order, as the local runner numbers them; with one trial in
flight the asks and tells interleave exactly as in the local loop, so for a fixed seed both
backends give the same trials. Device metrics that need hardware are pinned to the nodes that have
it through Ray custom resources (``PARETONAS_RAY_DEVICE_RESOURCES='{"gap8-sim": "gap8"}'``: a
trial measuring on device ``gap8-sim`` needs one unit of the node resource ``gap8``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from search_spaces.base import Arch
from service.db import utcnow
from service.evaluation import MeasurementCache, TrialFailure, needs_gpu
from service.records import LeaseLost, TrialRecord, TrialStore
from service.resolve import ResolvedStudy
from service.runner import StudyRunner

log = logging.getLogger(__name__)

#: Environment passed to Ray workers of a Ray instance this process starts itself, so that
#: trials resolve data paths and devices as the driver does.
FORWARDED_ENV = ("PARETONAS_DATA_DIRS", "PARETONAS_CONFIG_FILE")


@dataclass
class RayOptions:
    """How to reach Ray and how to shape trials."""

    address: str | None = None  # None: the running Ray instance, else a fresh local one
    max_concurrency: int = 1
    cpus_per_trial: float = 1.0
    device_resources: dict[str, str] = field(default_factory=dict)  # device -> Ray resource


def check_address(address: str | None) -> None:
    """Reject Ray Client addresses: under Ray Client, Tune runs its loop (our searcher, hence
    the study's lease and database writes) on the head node instead of in this worker."""
    if address and address.startswith("ray://"):
        raise ValueError(
            f"Ray address {address!r}: Ray Client (ray://) is not supported, because Tune would "
            "drive the study from the head node. Run the worker on a Ray node (`ray start "
            "--address=HEAD:6379 --num-cpus=0`) and pass 'auto' or 'HEAD:6379'"
        )


def ensure_ray(address: str | None) -> None:
    """Connect to ``address`` (``"auto"``, ``"head:6379"``: this machine must be a node of that
    cluster) or start a local Ray, unless this process is already connected."""
    import ray

    check_address(address)

    if ray.is_initialized():
        return
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(runtime_env={"env_vars": env} if env else None, **kwargs)


def trial_resources(study: ResolvedStudy, options: RayOptions) -> dict[str, float]:
    """Ray resources of one trial: CPUs, a GPU when it trains/evaluates or measures on CUDA
    (``needs_gpu``), plus one unit of each device resource it measures on."""
    resources: dict[str, float] = {"cpu": options.cpus_per_trial}
    if needs_gpu(study):
        resources["gpu"] = 1.0
    devices = {s.ref.device for s in study.sources.values() if s.kind == "device"}
    for device in sorted(devices):
        name = options.device_resources.get(device)
        if name:
            resources[name] = resources.get(name, 0.0) + 1.0
    return resources


_RAY_NAMES = {"cpu": "CPU", "gpu": "GPU"}  # Tune's resource keys -> the cluster's names


class UnschedulableError(RuntimeError):
    """No node of the Ray cluster offers a resource the study's trials need."""


def check_schedulable(resources: dict[str, float], *, wait_s: float = 10.0) -> None:
    """Fail the study soon, saying what is missing, rather than let Tune wait forever. Waits
    ``wait_s`` first: right after start-up a cluster's nodes are still registering."""
    import ray

    deadline = time.monotonic() + wait_s
    while True:
        available = ray.cluster_resources()
        missing = {name: need for name, need in resources.items()
                   if available.get(_RAY_NAMES.get(name, name), 0.0) < need}
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if missing:
        name = next(iter(missing))
        raise UnschedulableError(
            f"no Ray node offers enough of {sorted(missing)} (each trial needs {resources}): "
            f"start nodes with e.g. `ray start --resources='{{\"{name}\": 1}}'`, or change "
            "PARETONAS_RAY_DEVICE_RESOURCES"
        )


# --- the Ray side: evaluate one arch ------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _evaluator(context_json: str):
    """One resolved study per Ray worker process and study: spaces load tables/checkpoints once.

    The context carries the spec, the study's devices as the driver resolved them (its config
    file and API-registered devices, which a Ray node does not read), and the database URL for
    the shared measurement cache (None: no cache, e.g. an in-memory study)."""
    import ray

    from evaluators.compute import resolve_compute
    from evaluators.profilers.devices import DEFAULT_DEVICES, DeviceCatalog, DeviceSpec
    from service.evaluation import ArchEvaluator
    from service.resolve import resolve_spec
    from service.spec import StudySpec

    context = json.loads(context_json)
    spec = StudySpec.model_validate(context["spec"])
    devices = DeviceCatalog({**DEFAULT_DEVICES, **{
        d["name"]: DeviceSpec.model_validate(d) for d in context["devices"]}})
    cache = None
    if context["database_url"]:
        from service.db import Database
        from service.measurement_cache import DbMeasurementCache

        cache = DbMeasurementCache(Database(context["database_url"], run_migrations=False))
    # the GPU Ray gave this trial (visible as cuda:0), unless the study asked for the CPU (its
    # GPU is then for a torch-cuda device), or the CPU when it gave none
    gpu = "cuda" if ray.get_gpu_ids() and spec.compute.device != "cpu" else "cpu"
    compute = resolve_compute(gpu, amp=spec.compute.amp, prefetch=spec.compute.prefetch)
    return ArchEvaluator(resolve_spec(spec, devices=devices), cache=cache, seed=spec.seed,
                         compute=compute)


def evaluate_trial(config: dict[str, Any], context_json: str) -> dict[str, Any]:
    """Tune function trainable: evaluate ``config["arch"]``; the outcome goes back as JSON text
    (Tune flattens nested result dicts; the driver wants them whole)."""
    t0 = time.perf_counter()
    values: dict[str, float] = {}
    info: dict[str, Any] = {}
    error = None
    if not config.get("known"):  # a repeated arch: the driver reuses its first result
        try:
            evaluation = _evaluator(context_json)(Arch(config["arch"]))
            values, info = evaluation.values, evaluation.info
        except TrialFailure as exc:
            error = str(exc)
    payload = {"values": values, "info": info, "error": error,
               "duration_s": time.perf_counter() - t0, "node": os.uname().nodename}
    return {"payload": json.dumps(payload)}


def trial_context(study: ResolvedStudy, store: TrialStore) -> str:
    """What a Ray worker needs to evaluate this study's trials as the driver would (JSON)."""
    devices = sorted({s.ref.device for s in study.sources.values() if s.kind == "device"})
    db = getattr(store, "db", None)
    return json.dumps({
        "spec": study.spec.model_dump(mode="json"),
        "devices": [study.devices.get(d).model_dump(mode="json") for d in devices],
        "database_url": db.url if db is not None else None,
    }, sort_keys=True)


# --- the driver side ----------------------------------------------------------------------------
@dataclass
class _Pending:
    trial: Any  # optuna.Trial
    arch: Arch
    started_at: Any
    known: TrialRecord | None


class RayStudyRunner(StudyRunner):
    """``StudyRunner`` whose trials run as Ray Tune trials (see the module docstring)."""

    def __init__(
        self,
        study: ResolvedStudy,
        store: TrialStore,
        *,
        worker_id: str = "ray",
        cache: MeasurementCache | None = None,
        options: RayOptions | None = None,
    ):
        super().__init__(study, store, worker_id=worker_id, cache=cache)
        self.options = options or RayOptions(max_concurrency=study.spec.max_concurrency)
        self.optuna_study = None
        self.pending: dict[str, _Pending] = {}
        self.abort: BaseException | None = None  # lease lost or store failure: stop everything
        self.stopped = False  # cancel requested: ask no more, stop the trials in flight
        self.deadline: float | None = None
        self.out_of_time = False

    # called by the searcher and the stopper, in the driver's Tune loop
    def must_stop(self) -> bool:
        """Cancel requested, lease lost, store failed or time budget spent: stop the study.

        Trials in flight are stopped too (the stopper asks this on every Tune step): unlike a
        local trial, a Ray trial can be interrupted, and one waiting for a busy device node
        could otherwise hold a cancelled study open indefinitely."""
        if self.abort is not None or self.stopped:
            return True
        try:
            if self.store.should_stop():
                self.stopped = True
        except LeaseLost as exc:
            self.abort = exc
        if self.deadline is not None and time.monotonic() >= self.deadline:
            log.info("study %s: time budget spent", self.spec.name)
            self.deadline = None
            self.out_of_time = True
        return self.abort is not None or self.stopped or self.out_of_time

    def next_config(self, trial_id: str) -> dict[str, Any] | None | str:
        """A config for a new trial; None to wait for trials in flight; "finished" to stop."""
        if self.must_stop():
            return "finished"
        started = len(self.records) + len(self.pending)
        if started >= self.spec.budget.trials:
            return "finished"
        stages = getattr(self, "stages", None)
        if stages is not None and stages.stage_of(started) != self.stage:
            if self.pending:  # a stage's sampler is built from all of the previous stage
                return None
            self.optuna_study = self._make_optuna_study()
        trial = self.optuna_study.ask(self.view.distributions)
        arch = Arch(self.view.arch_params(trial.params))
        known = self.by_key.get(self.key_of(arch))
        self.pending[trial_id] = _Pending(trial, arch, utcnow(), known)
        return {"arch": arch.to_dict(), "known": known is not None}

    def complete(self, trial_id: str, result: dict | None, error: bool) -> None:
        """A Tune trial ended: persist it (or, stopped before reporting, forget it)."""
        pending = self.pending.pop(trial_id, None)
        if pending is None or self.abort is not None:
            return
        payload = json.loads(result["payload"]) if result and "payload" in result else None
        if payload is None and not error:
            return  # stopped by Tune before it reported: never finished, so not a trial
        try:
            self._persist(pending, payload)
        except LeaseLost as exc:
            self.abort = exc
        except Exception as exc:  # the database went away: stop; the lease hands it on
            log.warning("study %s: saving a trial failed: %s", self.spec.name, exc)
            self.abort = exc

    def _persist(self, pending: _Pending, payload: dict | None) -> None:

        known = pending.known or self.by_key.get(self.key_of(pending.arch))
        if known is not None:  # repeated arch (also one finished while this one ran)
            values, info, error = self.reuse(known)
        elif payload is None:
            values, info, error = {}, {}, "the Ray trial failed (see the Ray worker's log)"
        else:
            values, info, error = payload["values"], payload["info"], payload["error"]
        if payload is not None:
            info = {**info, "ray": {"node": payload["node"]}}
        self._finish_trial(
            self.optuna_study, pending.trial, pending.arch, values=values, info=info,
            error=error, started_at=pending.started_at,
            duration_s=float(payload["duration_s"]) if payload else 0.0,
            final=len(self.records) + 1 >= self.spec.budget.trials,
        )

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> str:
        self._load_history()
        self.optuna_study = self._make_optuna_study()
        budget = self.spec.budget
        remaining = budget.trials - len(self.records)
        if budget.seconds:
            spent = sum(r.duration_s for r in self.records)
            self.deadline = time.monotonic() + max(budget.seconds - spent, 0.0)
        if remaining > 0:
            self._tune(remaining)
        if self.abort is not None:  # lease lost, or the database error the worker handles
            raise self.abort
        if self.stopped:
            return "stopped"
        if self.tracker.reference is None:
            self._finalise_reference()
        self._finetune_front()  # in the driver, after the trials
        return "completed"

    def _tune(self, remaining: int) -> None:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no console tables from a service
        from ray import tune

        from service.backends.tune_glue import StudySearcher, StudyStopper

        ensure_ray(self.options.address)
        resources = trial_resources(self.study, self.options)
        check_schedulable(resources)
        trainable = tune.with_resources(
            tune.with_parameters(evaluate_trial,
                                 context_json=trial_context(self.study, self.store)),
            resources,
        )
        storage = tempfile.mkdtemp(prefix="paretonas-tune-")
        try:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=StudySearcher(self), num_samples=remaining,
                    max_concurrent_trials=self.options.max_concurrency,
                    # one long-lived actor per slot: a fresh actor per trial re-imports torch
                    # and re-resolves the space, seconds per trial
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name="study", storage_path=storage, verbose=0, stop=StudyStopper(self),
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                ),
            )
            tuner.fit()
        finally:
            shutil.rmtree(storage, ignore_errors=True)
