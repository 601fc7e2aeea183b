"""Devices: a name + a profiler kind + that kind's validated settings.

The catalog starts from built-in defaults (``cpu``, ``ort-cpu``, ``gap8``, and ``cuda`` where
torch sees a GPU), then the server
config file (YAML, path from ``PARETONAS_CONFIG_FILE``), then devices registered over the API.
A request can only name a known profiler kind and its validated settings, never a command line:
settings a profiler marks ``config_only_settings`` (the GVSOC command) come from the file only.

Config file shape::

    devices:
      - name: gap8-sim
        kind: gap8
        settings: {mode: gvsoc, command: [make, -C, /opt/flow, run, "MODEL={onnx}"]}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evaluators.profilers import PROFILERS
from evaluators.profilers.base import Profiler, settings_hash
from paretonas_core.registry import UnknownNameError

Source = Literal["default", "config", "api"]


class DeviceError(ValueError):
    """An invalid device (unknown kind, bad settings, bad config file); says what is allowed."""


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = Field(min_length=1, max_length=100, description="registered profiler kind")
    settings: dict[str, Any] = Field(default_factory=dict)

    def validated(self, *, source: Source = "config") -> DeviceSpec:
        """Check ``kind`` against the registry and ``settings`` against its Settings model.

        Raises ``UnknownNameError`` (lists the kinds) or pydantic's ``ValidationError``; with
        ``source="api"`` also ``DeviceError`` for settings only the config file may set.
        """
        cls = PROFILERS.get(self.kind)  # UnknownNameError lists the kinds
        if source == "api":
            forbidden = sorted(set(self.settings) & set(cls.config_only_settings))
            if forbidden:
                raise DeviceError(
                    f"settings {forbidden} of {self.kind!r} can only be set in the server "
                    "config file (PARETONAS_CONFIG_FILE), not over the API"
                )
        settings = cls.Settings.model_validate(self.settings)
        return self.model_copy(update={"settings": settings.model_dump()})

    def settings_hash(self) -> str:
        """Part of the measurement-cache key: equal settings, equal hash."""
        return settings_hash(self.settings)

    def profiler_class(self) -> type[Profiler]:
        return PROFILERS.get(self.kind)


DEFAULT_DEVICES: dict[str, DeviceSpec] = {
    "cpu": DeviceSpec(name="cpu", kind="torch-cpu", settings={"threads": 1}),
    "ort-cpu": DeviceSpec(name="ort-cpu", kind="onnxruntime-cpu", settings={"threads": 1}),
    "gap8": DeviceSpec(name="gap8", kind="gap8", settings={"mode": "analytic"}),
}


#: built in where torch sees a GPU (``builtin_devices``): CUDA-event latency on GPU 0
CUDA_DEVICE = DeviceSpec(name="cuda", kind="torch-cuda", settings={})


def cuda_present() -> bool:
    """Whether torch sees a GPU here (False without torch, or with a CPU-only machine)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def builtin_devices() -> dict[str, DeviceSpec]:
    """``DEFAULT_DEVICES``, plus ``cuda`` (kind ``torch-cuda``) where there is a GPU, tied to
    this machine's GPU model (``expect_gpu``): another model elsewhere fails its trials rather
    than share this one's cached latencies."""
    out = dict(DEFAULT_DEVICES)
    if cuda_present():
        import torch

        out[CUDA_DEVICE.name] = CUDA_DEVICE.model_copy(
            update={"settings": {"expect_gpu": torch.cuda.get_device_name(0)}}
        ).validated(source="config")
    return out


def describe_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"settings.{'.'.join(map(str, e['loc']))}: {e['msg']}".replace("settings.: ", "")
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        )
    return str(exc.args[0]) if exc.args else str(exc)


def load_config_devices(path: str | os.PathLike[str]) -> list[DeviceSpec]:
    """The validated ``devices`` of a server config file (YAML); DeviceError names the entry."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise DeviceError(f"config file {path}: cannot read it: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise DeviceError(f"config file {path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise DeviceError(f"config file {path}: expected a mapping with a 'devices' list")
    raw = data.get("devices", [])
    if not isinstance(raw, list):
        raise DeviceError(f"config file {path}: 'devices' must be a list of "
                          "{name, kind, settings} entries")
    devices, seen = [], set()
    for i, entry in enumerate(raw):
        where = f"config file {path}: devices[{i}]"
        try:
            device = DeviceSpec.model_validate(entry).validated(source="config")
        except (ValidationError, UnknownNameError, DeviceError) as exc:
            raise DeviceError(f"{where}: {describe_error(exc)}") from exc
        if device.name in seen:
            raise DeviceError(f"{where}: duplicate device name {device.name!r}")
        seen.add(device.name)
        devices.append(device)
    return devices


def config_file_from_env() -> Path | None:
    raw = os.environ.get("PARETONAS_CONFIG_FILE")
    return Path(raw) if raw else None


class DeviceCatalog:
    """Known devices by name, with where each came from (default, config file, API)."""

    def __init__(self, devices: dict[str, DeviceSpec] | None = None):
        self._devices = dict(builtin_devices() if devices is None else devices)
        self._sources: dict[str, Source] = {name: "default" for name in self._devices}

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> DeviceCatalog:
        """Defaults plus the config file's devices (``path``, else PARETONAS_CONFIG_FILE)."""
        catalog = cls()
        path = path if path is not None else config_file_from_env()
        if path is not None:
            for device in load_config_devices(path):
                catalog.add(device, source="config")
        return catalog

    def add(self, device: DeviceSpec, *, source: Source = "config") -> None:
        self._devices[device.name] = device
        self._sources[device.name] = source

    def names(self) -> list[str]:
        return sorted(self._devices)

    def __contains__(self, name: object) -> bool:
        return name in self._devices

    def source(self, name: str) -> Source:
        self.get(name)
        return self._sources.get(name, "config")

    def get(self, name: str) -> DeviceSpec:
        if name not in self._devices:
            hint = ""
            if name == CUDA_DEVICE.name:  # built in only where there is a GPU
                hint = " (the built-in 'cuda' device is there only where torch sees a GPU)"
            raise KeyError(f"unknown device {name!r}{hint}; known devices: "
                           f"{', '.join(self.names())}")
        return self._devices[name]

    def profiler(self, name: str) -> Profiler:
        spec = self.get(name)
        return PROFILERS.get(spec.kind)(spec.settings)
