"""ORM tables. Schema changes go through an Alembic migration in
``service/persistence/migrations``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.persistence.db import Base, UTCDateTime, utcnow

STUDY_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
TRIAL_STATES = ("complete", "failed")


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    search_space: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    n_trials: Mapped[int] = mapped_column(Integer)  # the budget
    n_complete: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    best_hypervolume: Mapped[float | None] = mapped_column(Float, nullable=True)
    reference_point: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: free-form per-study figures that plug-ins report (e.g. predictor quality)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: what users attach (``PATCH``); the search never reads them
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    #: the client's ``Idempotency-Key`` of the submit that created the study (unique)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True,
                                                        index=True)
    #: sha256 of the spec without name and budget: "the same study" for duplicate warnings
    spec_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def n_finished(self) -> int:
        return self.n_complete + self.n_failed

    @property
    def progress(self) -> float:
        return min(1.0, self.n_finished / self.n_trials) if self.n_trials else 0.0


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number", name="uq_trial_number"),
        Index("ix_trials_study_key", "study_id", "arch_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    arch: Mapped[dict[str, Any]] = mapped_column(JSON)
    arch_key: Mapped[str] = mapped_column(String(64))
    #: objective/constraint key ("acc", "latency_ms@cpu") -> value; empty for failed trials
    values: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    on_front: Mapped[bool] = mapped_column(Boolean, default=False)
    stage: Mapped[int] = mapped_column(Integer, default=1)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: how each value was obtained (measured / predicted / cached), device details, costs...
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class HypervolumePoint(Base):
    __tablename__ = "hypervolume_history"

    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    trial_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    hypervolume: Mapped[float] = mapped_column(Float)


class Measurement(Base):
    """Cache of device measurements, keyed so a repeated arch is never measured twice."""

    __tablename__ = "measurements"
    __table_args__ = (
        UniqueConstraint(
            "arch_key", "space_key", "device", "profiler", "profiler_version", "settings_hash",
            name="uq_measurement",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arch_key: Mapped[str] = mapped_column(String(64))
    space_key: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(100))
    profiler: Mapped[str] = mapped_column(String(100))
    profiler_version: Mapped[str] = mapped_column(String(50))
    settings_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Device(Base):
    """Devices registered over the API (those from the config file are not stored)."""

    __tablename__ = "devices"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
