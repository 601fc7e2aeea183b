"""Device routes: list the catalog, register a device, describe the profiler kinds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ValidationError

from evaluators.profilers import PROFILERS
from evaluators.profilers.devices import DeviceCatalog, DeviceError, DeviceSpec
from paretonas_core.registry import UnknownNameError
from service.interfaces.api.deps import SessionDep
from service.persistence.devices import DeviceConflict, public_settings, register_device

router = APIRouter(tags=["devices"])


class MetricPublic(BaseModel):
    name: str
    unit: str


class DevicePublic(BaseModel):
    name: str
    kind: str
    source: str  # default | config | api
    settings: dict[str, Any]
    metrics: list[MetricPublic]


class DeviceListPublic(BaseModel):
    data: list[DevicePublic]
    count: int


class ProfilerPublic(BaseModel):
    name: str
    version: str
    doc: str
    metrics: list[MetricPublic]
    settings_schema: dict[str, Any]
    config_only_settings: list[str]


class ProfilerListPublic(BaseModel):
    data: list[ProfilerPublic]


def _metrics(kind: str) -> list[MetricPublic]:
    cls = PROFILERS.get(kind)
    return [MetricPublic(name="latency_ms", unit="ms")] + [
        MetricPublic(name=n, unit=u) for n, u in cls.extra_metrics.items()
    ]


def _public(catalog: DeviceCatalog, name: str) -> DevicePublic:
    device = catalog.get(name)
    return DevicePublic(name=name, kind=device.kind, source=catalog.source(name),
                        settings=public_settings(device), metrics=_metrics(device.kind))


@router.get("/devices", response_model=DeviceListPublic)
def list_devices(request: Request) -> DeviceListPublic:
    catalog = request.app.state.device_catalog()
    data = [_public(catalog, n) for n in catalog.names()]
    return DeviceListPublic(data=data, count=len(data))


@router.get("/devices/{name}", response_model=DevicePublic)
def get_device(name: str, request: Request) -> DevicePublic:
    catalog = request.app.state.device_catalog()
    if name not in catalog:
        raise HTTPException(404, f"unknown device {name!r}; known devices: "
                                 + ", ".join(catalog.names()))
    return _public(catalog, name)


@router.post("/devices", status_code=201, response_model=DevicePublic)
def create_device(body: DeviceSpec, session: SessionDep, request: Request) -> DevicePublic:
    """Register a device: a known profiler kind with validated settings (no command lines)."""
    catalog = request.app.state.device_catalog()
    try:
        device = register_device(session, catalog, body)
    except DeviceConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except ValidationError as exc:
        detail = [{"loc": ["body", "settings", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False, include_context=False,
                                      include_input=False)]
        raise HTTPException(422, detail) from exc
    except (UnknownNameError, DeviceError) as exc:
        field = "kind" if isinstance(exc, UnknownNameError) else "settings"
        raise HTTPException(422, [{"loc": ["body", field], "msg": str(exc),
                                   "type": "value_error"}]) from exc
    catalog.add(device, source="api")
    return _public(catalog, device.name)


@router.get("/profilers", response_model=ProfilerListPublic)
def list_profilers() -> ProfilerListPublic:
    """Profiler kinds, their metrics and the settings a device of that kind accepts."""
    data = []
    for name in PROFILERS.names():
        cls = PROFILERS.get(name)
        schema = cls.Settings.model_json_schema()
        hidden = sorted(cls.config_only_settings)
        for key in hidden:
            schema.get("properties", {}).pop(key, None)
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        data.append(ProfilerPublic(name=name, version=cls.version, doc=doc,
                                   metrics=_metrics(name), settings_schema=schema,
                                   config_only_settings=hidden))
    return ProfilerListPublic(data=data)
