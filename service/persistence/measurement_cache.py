"""The persisted measurement cache (``measurements`` table) behind ``ArchEvaluator``.

Keyed by (arch key, space key, device, profiler, profiler version, settings hash), so a repeated
arch is never measured twice on the same device with the same settings, across studies and
workers, while a new profiler version or changed settings measure afresh.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.persistence.db import Database
from service.persistence.models import Measurement

log = logging.getLogger(__name__)

KEY_FIELDS = ("arch_key", "space_key", "device", "profiler", "profiler_version", "settings_hash")


def _check_key(key: dict[str, str]) -> dict[str, str]:
    missing = [f for f in KEY_FIELDS if not key.get(f)]
    if missing:
        raise ValueError(f"measurement cache key lacks {missing}; needs {list(KEY_FIELDS)}")
    return {f: str(key[f]) for f in KEY_FIELDS}


class DbMeasurementCache:
    """``MeasurementCache`` on the database."""

    def __init__(self, db: Database):
        self.db = db

    def get(self, key: dict[str, str]) -> dict[str, Any] | None:
        k = _check_key(key)
        with self.db.session() as s:
            row = s.execute(
                select(Measurement.result).filter_by(**k).limit(1)
            ).scalar_one_or_none()
        return row

    def put(self, key: dict[str, str], result: dict[str, Any]) -> None:
        k = _check_key(key)
        with self.db.session() as s:
            s.add(Measurement(**k, result=result))
            try:
                s.commit()
            except IntegrityError:  # another worker measured the same arch first: keep theirs
                s.rollback()
                log.debug("measurement for %s on %s already cached", k["arch_key"], k["device"])

    def count(self) -> int:
        from sqlalchemy import func

        with self.db.session() as s:
            return int(s.execute(select(func.count()).select_from(Measurement)).scalar_one())


def open_cache(url: str) -> DbMeasurementCache:
    """The cache of the database at ``url``, for a process that did not open it (a Ray trial:
    ``RayExecutor`` names this function, so the engine does not import the database layer)."""
    return DbMeasurementCache(Database(url, run_migrations=False))
