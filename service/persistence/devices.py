"""The server's device catalog: built-in defaults, the config file, and devices registered over
the API (stored in the ``devices`` table). API devices only name a known profiler kind with
validated settings; settings a profiler reserves for the config file (a simulator command) are
refused, and names already used by a default or config device cannot be taken."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evaluators.profilers.devices import DeviceCatalog, DeviceError, DeviceSpec, describe_error
from paretonas_core.registry import UnknownNameError
from service.persistence.db import Database
from service.persistence.models import Device
from service.settings import Settings

log = logging.getLogger(__name__)


class DeviceConflict(DeviceError):
    """The name is taken."""


def load_catalog(db: Database | None, settings: Settings) -> DeviceCatalog:
    """Defaults + the config file (``PARETONAS_CONFIG_FILE``) + API-registered devices."""
    catalog = DeviceCatalog.from_config(settings.config_file)
    if db is None:
        return catalog
    with db.session() as s:
        rows = s.execute(select(Device)).scalars().all()
    for row in rows:
        if row.name in catalog:  # config wins over a stale API registration
            continue
        try:
            spec = DeviceSpec(name=row.name, kind=row.kind, settings=row.settings)
            catalog.add(spec.validated(source="api"), source="api")
        except (ValidationError, UnknownNameError, DeviceError) as exc:
            # e.g. a third-party profiler was uninstalled: skip the device, keep serving
            log.warning("skipping registered device %r: %s", row.name, describe_error(exc))
    return catalog


def validate_api_device(body: dict[str, Any] | DeviceSpec) -> DeviceSpec:
    """A request's device, validated; DeviceError/UnknownNameError/ValidationError otherwise."""
    spec = body if isinstance(body, DeviceSpec) else DeviceSpec.model_validate(body)
    return spec.validated(source="api")


def register_device(session: Session, catalog: DeviceCatalog, spec: DeviceSpec) -> DeviceSpec:
    """Validate and store an API device; DeviceConflict when the name is in use."""
    device = validate_api_device(spec)
    if device.name in catalog:
        raise DeviceConflict(
            f"device {device.name!r} already exists ({catalog.source(device.name)}); "
            "choose another name"
        )
    # stored without the config-only keys (their defaults), so reloading re-validates cleanly
    session.add(Device(name=device.name, kind=device.kind, settings=public_settings(device)))
    try:
        session.commit()
    except IntegrityError as exc:  # registered concurrently under the same name
        session.rollback()
        raise DeviceConflict(f"device {device.name!r} already exists (api)") from exc
    return device


def public_settings(device: DeviceSpec) -> dict[str, Any]:
    """Settings without the config-only ones (a simulator command stays on the server)."""
    hidden = device.profiler_class().config_only_settings
    return {k: v for k, v in device.settings.items() if k not in hidden}
