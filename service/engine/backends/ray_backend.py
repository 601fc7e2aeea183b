"""Ray executor: a study's evaluations run as Ray Tune trials, in parallel across a Ray cluster.

The driver (the worker process that holds the study's lease) runs the one ``StudyRunner`` loop
and keeps everything that must be exactly-once: the strategy, the Pareto front and persistence.
``RayExecutor`` only evaluates: Tune runs in a background thread of the driver, its ``Searcher``
hands Tune the archs the runner submitted (``service.engine.backends.tune_glue``), and each
Tune trial
resolves the study spec once per Ray worker process and returns the metric values, which go back
to the runner as ``Outcome``s. So a crash loses at most the trials in flight, and resume is the
runner's (rebuild the strategy from the persisted trials, run the rest of the budget).

Device metrics that need hardware are pinned to the nodes that have it through Ray custom
resources (``PARETONAS_RAY_DEVICE_RESOURCES='{"gap8-sim": "gap8"}'``: a trial measuring on device
``gap8-sim`` needs one unit of the node resource ``gap8``); ``RayOptions`` also sets each trial's
CPUs and GPUs.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from search_spaces.base import Arch
from service.engine.evaluation import TrialFailure, needs_gpu
from service.engine.executors import Outcome
from service.engine.records import TrialRecord
from service.engine.resolve import ResolvedStudy, measured_devices

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
    gpus_per_trial: float = 0.0
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
    """Ray resources of one trial: CPUs, GPUs (``gpus_per_trial``, at least one when it
    trains/evaluates or measures on CUDA: ``needs_gpu``), plus one unit of each device resource
    it measures on."""
    resources: dict[str, float] = {"cpu": options.cpus_per_trial}
    gpus = max(options.gpus_per_trial or 0.0, 1.0 if needs_gpu(study) else 0.0)
    if gpus:
        resources["gpu"] = gpus
    for device in measured_devices(study):
        name = options.device_resources.get(device)
        if name:
            resources[name] = resources.get(name, 0.0) + 1.0
    return resources


_RAY_NAMES = {"cpu": "CPU", "gpu": "GPU"}  # Tune's resource names -> the cluster's


@dataclass(frozen=True)
class RemoteCache:
    """How a Ray trial opens the shared measurement cache: ``open`` ("module:function") called
    with ``url``. A name, not an object, so the engine does not import the database layer."""

    url: str
    open: str = "service.persistence.measurement_cache:open_cache"


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
    file and API-registered devices, which a Ray node does not read), and how to open the shared
    measurement cache (None: no cache, e.g. an in-memory study)."""
    import importlib

    import ray

    from evaluators.profilers.devices import DEFAULT_DEVICES, DeviceCatalog, DeviceSpec
    from paretonas_core.compute import resolve_compute
    from service.engine.evaluation import ArchEvaluator
    from service.engine.resolve import resolve_spec
    from service.engine.spec import StudySpec

    context = json.loads(context_json)
    spec = StudySpec.model_validate(context["spec"])
    devices = DeviceCatalog({**DEFAULT_DEVICES, **{
        d["name"]: DeviceSpec.model_validate(d) for d in context["devices"]}})
    cache = None
    if context["cache"]:
        module, _, name = context["cache"]["open"].partition(":")
        cache = getattr(importlib.import_module(module), name)(context["cache"]["url"])
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
    try:
        evaluation = _evaluator(context_json)(Arch(config["arch"]))
        values, info = evaluation.values, evaluation.info
    except TrialFailure as exc:
        error = str(exc)
    payload = {"values": values, "info": info, "error": error,
               "duration_s": time.perf_counter() - t0, "node": os.uname().nodename}
    return {"payload": json.dumps(payload)}


def trial_context(study: ResolvedStudy, cache: RemoteCache | None) -> str:
    """What a Ray worker needs to evaluate this study's trials as the driver would (JSON)."""
    devices = measured_devices(study)
    return json.dumps({
        "spec": study.spec.model_dump(mode="json"),
        "devices": [study.devices.get(d).model_dump(mode="json") for d in devices],
        "cache": {"open": cache.open, "url": cache.url} if cache is not None else None,
    }, sort_keys=True)


# --- the driver side ----------------------------------------------------------------------------
#: How long Tune's searcher waits for the runner's next arch after handing it an outcome: the
#: runner tells, persists and submits within milliseconds, and without the wait Tune would find
#: no arch and sleep a whole scheduling step.
HANDOFF_WAIT_S = 5.0


class RayExecutor:
    """``Executor`` whose evaluations are Ray Tune trials (see the module docstring).

    ``cache``: the measurement cache the trials share (None: none)."""

    def __init__(self, study: ResolvedStudy, options: RayOptions | None = None, *,
                 cache: RemoteCache | None = None):
        self.study = study
        self.options = options or RayOptions(max_concurrency=study.spec.max_concurrency)
        self.capacity = self.options.max_concurrency
        self.cache = cache
        self._cv = threading.Condition()
        self._jobs: deque[tuple[int, Arch]] = deque()
        self._runner_busy = False  # an outcome was handed over; the runner may submit next
        self._closing = False
        self._tickets: dict[str, int] = {}  # Tune trial id -> ticket
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    # --- the runner's side ----------------------------------------------------------------------
    def start(self, history: Sequence[TrialRecord]) -> None:
        ensure_ray(self.options.address)
        self._resources = trial_resources(self.study, self.options)
        check_schedulable(self._resources)
        self._thread = threading.Thread(target=self._fit, name="paretonas-tune", daemon=True)
        self._thread.start()

    def submit(self, ticket: int, arch: Arch) -> None:
        with self._cv:
            self._jobs.append((ticket, arch))
            self._cv.notify_all()

    def wait(self, timeout: float) -> list[Outcome]:
        with self._cv:
            self._runner_busy = False
            self._cv.notify_all()
        out: list[Outcome] = []
        try:
            out.append(self._done.get(timeout=timeout))
            while True:
                out.append(self._done.get_nowait())
        except queue.Empty:
            pass
        if not out and self._thread is not None and not self._thread.is_alive():
            raise RuntimeError("Ray Tune stopped with trials in flight") from self._failure
        return out

    def close(self) -> None:
        with self._cv:
            self._closing = True  # the searcher says FINISHED, the stopper stops every trial
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def predictor_quality(self) -> dict[str, Any] | None:
        return None  # the accuracy screen is per Ray worker process; not reported

    # --- Tune's side (its loop runs in ``_fit``'s thread) ---------------------------------------
    def next_config(self, trial_id: str) -> dict[str, Any] | None | str:
        """A config for a new Tune trial; None to wait; "finished" to end the experiment."""
        with self._cv:
            if self._runner_busy:
                self._cv.wait_for(lambda: self._jobs or self._closing or not self._runner_busy,
                                  timeout=HANDOFF_WAIT_S)
            if self._closing:
                return "finished"
            if not self._jobs:
                return None
            ticket, arch = self._jobs.popleft()
        self._tickets[trial_id] = ticket
        return {"arch": arch.to_dict()}

    def complete(self, trial_id: str, result: dict | None, error: bool) -> None:
        """A Tune trial ended: hand its outcome to the runner (stopped before reporting: none)."""
        ticket = self._tickets.pop(trial_id, None)
        payload = json.loads(result["payload"]) if result and "payload" in result else None
        if ticket is None or (payload is None and not error):
            return
        if payload is None:
            outcome = Outcome(ticket, error="the Ray trial failed (see the Ray worker's log)")
        else:
            outcome = Outcome(ticket, payload["values"], payload["info"], payload["error"],
                              duration_s=float(payload["duration_s"]),
                              where={"ray": {"node": payload["node"]}})
        with self._cv:
            self._runner_busy = True
        self._done.put(outcome)

    def must_stop(self) -> bool:
        return self._closing

    def _fit(self) -> None:
        try:
            self._tune()
        except BaseException as exc:  # re-raised in the runner's thread by ``wait``
            log.warning("Ray Tune failed: %s", exc)
            self._failure = exc

    def _tune(self) -> None:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no console tables from a service
        from ray import tune

        from service.engine.backends.tune_glue import StudySearcher, StudyStopper

        trainable = tune.with_resources(
            tune.with_parameters(evaluate_trial,
                                 context_json=trial_context(self.study, self.cache)),
            self._resources,
        )
        storage = tempfile.mkdtemp(prefix="paretonas-tune-")
        try:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=StudySearcher(self.next_config, self.complete),
                    num_samples=-1,  # until the searcher says FINISHED
                    max_concurrent_trials=self.capacity,
                    # one long-lived actor per slot: a fresh actor per trial re-imports torch
                    # and re-resolves the space, seconds per trial
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name="study", storage_path=storage, verbose=0,
                    stop=StudyStopper(self.must_stop),
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                ),
            )
            tuner.fit()
        finally:
            shutil.rmtree(storage, ignore_errors=True)
