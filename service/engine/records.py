"""Plain records the runner exchanges with its stores, the ``TrialStore`` protocol, and the
in-memory store. The database store is ``service.persistence.store.DbStore``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class LeaseLost(RuntimeError):
    """This worker no longer owns the study (its lease expired and another worker took over)."""


@dataclass
class TrialRecord:
    number: int
    arch: dict[str, Any]
    arch_key: str
    values: dict[str, float]
    state: str  # "complete" | "failed"
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_s: float = 0.0
    stage: int = 1
    worker: str | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    on_front: bool = False


@dataclass
class FrontUpdate:
    """What changes with one finished trial: who left the front, the new hypervolume points."""

    left_front: list[int] = field(default_factory=list)
    hypervolume: list[tuple[int, float]] = field(default_factory=list)
    reference_point: list[float] | None = None
    best_hypervolume: float | None = None


#: Called with each trial once it is saved (progress bars, live views).
TrialObserver = Callable[[TrialRecord], None]


class TrialStore(Protocol):
    """Where a runner keeps one study's trials. Every write first checks that this runner still
    owns the study (``LeaseLost`` otherwise) and is atomic: all or nothing. Callers use only
    these operations, never which store they hold."""

    #: the hypervolume reference in objective units, once fixed
    reference_point: list[float] | None

    def load_trials(self) -> list[TrialRecord]:
        """The persisted trials, by number."""

    def save_trial(self, record: TrialRecord, update: FrontUpdate) -> None:
        """Persist a finished trial with its front update, then tell the observers."""

    def save_reference(self, update: FrontUpdate) -> None:
        """Persist a front update that comes with no trial (a reference fixed late)."""

    def update_trials(self, records: Sequence[TrialRecord], *,
                      best_hypervolume: float | None) -> None:
        """Rewrite values, info and front flags of saved trials (after fine-tuning), and the
        study's best hypervolume (None: unchanged)."""

    def check_lease(self) -> None:
        """Raise ``LeaseLost`` unless this runner still owns the study (before long work)."""

    def should_stop(self) -> bool:
        """A stop was requested (cancel); raises ``LeaseLost`` if the study was lost."""

    def set_extra(self, key: str, value: Any) -> None:
        """Set one entry of the study's ``extra`` document (stages, predictor quality, ...)."""

    def add_observer(self, observer: TrialObserver) -> None:
        """Call ``observer(record)`` after every saved trial."""


class Observers:
    """The observer list every store keeps (a mixin)."""

    _observers: list[TrialObserver]

    def add_observer(self, observer: TrialObserver) -> None:
        self.__dict__.setdefault("_observers", []).append(observer)

    def notify(self, record: TrialRecord) -> None:
        for observer in self.__dict__.get("_observers", ()):
            observer(record)


class MemoryStore(Observers):
    """In-process store for ``paretonas run`` and library use (no lease: it never expires)."""

    def __init__(self) -> None:
        self.trials: list[TrialRecord] = []
        self.reference_point: list[float] | None = None
        self.best_hypervolume: float | None = None
        self.hypervolume: list[tuple[int, float]] = []
        self.extra: dict[str, Any] = {}
        self.stop_requested = False

    def load_trials(self) -> list[TrialRecord]:
        return list(self.trials)

    def save_trial(self, record: TrialRecord, update: FrontUpdate) -> None:
        for t in self.trials:
            if t.number in update.left_front:
                t.on_front = False
        self.trials.append(record)
        self._apply(update)
        self.notify(record)

    def save_reference(self, update: FrontUpdate) -> None:
        self._apply(update)

    def update_trials(self, records: Sequence[TrialRecord], *,
                      best_hypervolume: float | None) -> None:
        by_number = {r.number: r for r in records}
        self.trials = [by_number.get(t.number, t) for t in self.trials]
        if best_hypervolume is not None:
            self.best_hypervolume = best_hypervolume

    def check_lease(self) -> None:
        """Nothing to check: a memory store belongs to its one process."""

    def _apply(self, update: FrontUpdate) -> None:
        self.hypervolume.extend(update.hypervolume)
        if update.reference_point is not None:
            self.reference_point = update.reference_point
        if update.best_hypervolume is not None:
            self.best_hypervolume = update.best_hypervolume

    def should_stop(self) -> bool:
        return self.stop_requested

    def set_extra(self, key: str, value: Any) -> None:
        self.extra[key] = value
