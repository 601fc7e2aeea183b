"""The ``Profiler`` contract: one class per device kind.

A *device* is a name + a profiler kind + that kind's validated settings (see ``devices.py``).
Every measurement records the profiler's name and version so a cache entry is never reused across
profiler changes.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


def settings_hash(settings: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a device's settings (a measurement-cache key part)."""
    canon = json.dumps(dict(settings), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


class ProfilerError(RuntimeError):
    """A measurement failed (simulator crashed, timed out, printed nothing parsable...)."""


class ProfilerSettings(BaseModel):
    """Base of each profiler's settings: unknown settings are errors."""

    model_config = ConfigDict(extra="forbid")
    warmup: int = 3
    repeats: int = 10


@dataclass
class LatencyResult:
    """One measurement of one subnet on one device."""

    latency_ms: float  # the median
    samples_ms: list[float] = field(default_factory=list)
    #: Other metrics this profiler reports (e.g. ``cycles``, ``fits_l2``, ``params_bytes``).
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def all_metrics(self) -> dict[str, float]:
        return {"latency_ms": self.latency_ms, **self.metrics}


class Profiler(ABC):
    """Measures a standalone model on one kind of device."""

    name: ClassVar[str]
    version: ClassVar[str]
    Settings: ClassVar[type[ProfilerSettings]] = ProfilerSettings
    #: metric name -> unit, besides ``latency_ms``
    extra_metrics: ClassVar[dict[str, str]] = {}
    #: settings only the server config file may set (e.g. a simulator command line): a device
    #: registered over the API that sets one of them is rejected
    config_only_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: ProfilerSettings | dict[str, Any] | None = None):
        if not isinstance(settings, ProfilerSettings):
            settings = self.Settings.model_validate(dict(settings or {}))
        self.settings = settings

    @classmethod
    def metric_names(cls) -> list[str]:
        return ["latency_ms", *cls.extra_metrics]

    @abstractmethod
    def measure(self, model: Any, example_input: Any) -> LatencyResult:
        """Measure ``model`` on ``example_input`` with this profiler's settings."""
