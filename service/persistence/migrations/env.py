"""Alembic environment: runs on the connection handed over by
``service.persistence.db.migrate``."""

from __future__ import annotations

from alembic import context

from service.persistence import models  # noqa: F401  (registers the tables on Base.metadata)
from service.persistence.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through service.persistence.db.migrate(engine)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
