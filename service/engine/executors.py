"""Executors: where a study's evaluations run. The ``StudyRunner`` is the one study loop; it asks
the strategy, ``submit``s archs to an executor up to its ``capacity``, ``wait``s for outcomes,
tells the strategy and persists. An executor only evaluates: it never sees the strategy or the
store, so every backend shares de-duplication, stages, budgets, the front and persistence.

Built in: ``LocalExecutor`` (this process, one evaluation at a time) and
``service.engine.backends.ray_backend.RayExecutor`` (Ray Tune trials across a cluster).
``make_executor`` picks one for a study; Ray is imported only when a study runs on it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from search_spaces.base import Arch
from service.engine.evaluation import ArchEvaluator, MeasurementCache, TrialFailure
from service.engine.records import TrialRecord
from service.engine.resolve import ResolvedStudy


@dataclass
class Outcome:
    """What became of one submitted arch. ``error`` set: the trial failed (values empty).
    ``where`` is merged into the trial's info (e.g. ``{"ray": {"node": ...}}``)."""

    ticket: int
    values: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0
    where: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    """Runs evaluations for one study run. ``capacity``: how many may be in flight at once."""

    capacity: int

    def start(self, history: Sequence[TrialRecord]) -> None:
        """Before the first ``submit``: the study's persisted trials (an evaluator that learns
        from measured trials, e.g. the accuracy screen, resumes from them)."""

    def submit(self, ticket: int, arch: Arch) -> None:
        """Start evaluating ``arch``; its ``Outcome`` carries ``ticket``."""

    def wait(self, timeout: float) -> list[Outcome]:
        """Outcomes finished since the last call; may return [] after ``timeout`` seconds so
        the runner can check for a stop request."""

    def close(self) -> None:
        """Stop whatever is still in flight (its outcomes are dropped) and release resources."""

    def predictor_quality(self) -> dict[str, Any] | None:
        """The evaluation's own predictor quality (the accuracy screen), if it keeps one."""


class LocalExecutor:
    """Evaluations in this process, one at a time, in submission order."""

    capacity = 1

    def __init__(self, study: ResolvedStudy, *, cache: MeasurementCache | None = None):
        self.evaluator = ArchEvaluator(study, cache=cache, seed=study.spec.seed)
        self._queue: deque[tuple[int, Arch]] = deque()

    def start(self, history: Sequence[TrialRecord]) -> None:
        self.evaluator.restore(list(history))

    def submit(self, ticket: int, arch: Arch) -> None:
        self._queue.append((ticket, arch))

    def wait(self, timeout: float) -> list[Outcome]:
        if not self._queue:
            return []
        ticket, arch = self._queue.popleft()
        t0 = time.perf_counter()
        try:
            evaluation = self.evaluator(arch)
        except TrialFailure as exc:
            return [Outcome(ticket, error=str(exc), duration_s=time.perf_counter() - t0)]
        return [Outcome(ticket, evaluation.values, evaluation.info,
                        duration_s=time.perf_counter() - t0)]

    def close(self) -> None:
        self._queue.clear()

    def predictor_quality(self) -> dict[str, Any] | None:
        return self.evaluator.predictor_quality()


def make_executor(
    study: ResolvedStudy, *, backend: str = "local", cache: MeasurementCache | None = None,
    cache_url: str | None = None, ray_address: str | None = None,
    ray_device_resources: dict[str, str] | None = None,
) -> Executor:
    """The executor for ``study`` on ``backend`` (the spec's ``backend`` also selects Ray).

    ``cache`` is the in-process measurement cache; a Ray trial opens the database's at
    ``cache_url`` itself (None: no cache)."""
    if backend == "ray" or study.spec.backend == "ray":
        from service.engine.backends.ray_backend import RayExecutor, RayOptions, RemoteCache

        options = RayOptions(address=ray_address, max_concurrency=study.spec.max_concurrency,
                             device_resources=dict(ray_device_resources or {}))
        remote = RemoteCache(cache_url) if cache_url else None
        return RayExecutor(study, options, cache=remote)
    return LocalExecutor(study, cache=cache)
