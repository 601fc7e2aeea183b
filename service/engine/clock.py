"""The service's one clock: timezone-aware UTC, shared by the engine and the database layer
(kept apart from ``service.persistence.db`` so that the engine does not import SQLAlchemy)."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
