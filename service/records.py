"""Plain records the runner exchanges with its stores (database or memory)."""

from __future__ import annotations

import datetime as dt
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


class TrialStore(Protocol):
    """Where a runner keeps a study's trials. ``save_trial`` is atomic: all or nothing."""

    reference_point: list[float] | None

    def load_trials(self) -> list[TrialRecord]: ...

    def save_trial(self, record: TrialRecord, update: FrontUpdate) -> None: ...

    def save_reference(self, update: FrontUpdate) -> None: ...

    def should_stop(self) -> bool: ...

    def set_extra(self, key: str, value: Any) -> None: ...


class MemoryStore:
    """In-process store for ``paretonas run`` and library use."""

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
        self.save_trial_update(update)

    def save_reference(self, update: FrontUpdate) -> None:
        self.save_trial_update(update)

    def save_trial_update(self, update: FrontUpdate) -> None:
        self.hypervolume.extend(update.hypervolume)
        if update.reference_point is not None:
            self.reference_point = update.reference_point
        if update.best_hypervolume is not None:
            self.best_hypervolume = update.best_hypervolume

    def should_stop(self) -> bool:
        return self.stop_requested

    def set_extra(self, key: str, value: Any) -> None:
        self.extra[key] = value
