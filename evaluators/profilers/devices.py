"""Devices: a name + a profiler kind + that kind's validated settings.

The catalog starts from built-in defaults (``cpu``), then the server config file, then devices
registered over the API. A request can only name a known profiler kind and its validated
settings, never a command line.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evaluators.profilers import PROFILERS
from evaluators.profilers.base import Profiler


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = Field(min_length=1, max_length=100, description="registered profiler kind")
    settings: dict[str, Any] = Field(default_factory=dict)

    def validated(self) -> DeviceSpec:
        """Check ``kind`` against the registry and ``settings`` against its Settings model."""
        cls = PROFILERS.get(self.kind)  # UnknownNameError lists the kinds
        settings = cls.Settings.model_validate(self.settings)
        return self.model_copy(update={"settings": settings.model_dump()})


DEFAULT_DEVICES: dict[str, DeviceSpec] = {
    "cpu": DeviceSpec(name="cpu", kind="torch-cpu", settings={"threads": 1}),
}


class DeviceCatalog:
    """Known devices by name."""

    def __init__(self, devices: dict[str, DeviceSpec] | None = None):
        self._devices = dict(DEFAULT_DEVICES if devices is None else devices)

    def add(self, device: DeviceSpec) -> None:
        self._devices[device.name] = device

    def names(self) -> list[str]:
        return sorted(self._devices)

    def get(self, name: str) -> DeviceSpec:
        if name not in self._devices:
            raise KeyError(f"unknown device {name!r}; known devices: {', '.join(self.names())}")
        return self._devices[name]

    def profiler(self, name: str) -> Profiler:
        spec = self.get(name)
        return PROFILERS.get(spec.kind)(spec.settings)
