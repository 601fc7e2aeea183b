"""Service settings from ``PARETONAS_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARETONAS_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///paretonas.db",
        description="SQLAlchemy URL (default SQLite file; postgresql+psycopg://...)",
    )
    lease_seconds: float = Field(default=30.0, gt=0, description="how long a worker's claim lasts")
    heartbeat_seconds: float = Field(default=5.0, gt=0, description="how often a worker renews it")
    poll_seconds: float = Field(default=1.0, gt=0, description="idle worker's queue poll period")
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, le=3600,
        description="a stopping worker finishes its current trial within this time, else "
                    "abandons it; either way it gives its study back to the queue",
    )
    embedded_worker_nice: int = Field(
        default=5, ge=0, le=19,
        description="embedded workers (serve --workers N) run this much nicer than the server: "
                    "trials are CPU-bound, and API requests should not queue behind them "
                    "(0: same priority)",
    )
    config_file: Path | None = Field(default=None, description="server config (YAML): devices")
    max_trials: int = Field(default=100_000, ge=1, description="largest budget.trials accepted")
    max_seconds: float = Field(default=7 * 24 * 3600, gt=0, description="largest budget.seconds")
    backend: Literal["local", "ray"] = Field(
        default="local", description="workers run every study on this backend ('ray': on Ray)"
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster this node is in ('auto', 'head:6379'); none: local"
    )
    ray_device_resources: dict[str, str] = Field(
        default_factory=dict,
        description="device name -> Ray custom resource its trials need (JSON object)",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="keys accepted as 'Authorization: Bearer <key>' on write endpoints "
                    "(JSON list or comma-separated); none: writes are open",
    )
    allow_insecure: bool = Field(
        default=False, description="allow listening on a non-loopback host without API keys"
    )
    db_lock_timeout_seconds: float = Field(
        default=2.0, gt=0, le=600,
        description="API: how long one attempt waits for a database lock held by another writer",
    )
    write_retry_seconds: float = Field(
        default=10.0, ge=0, le=600,
        description="API: how long a request blocked by database locks is retried (with "
                    "back-off) before it answers 503 with Retry-After",
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="largest request body accepted (bytes)"
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value):
        """``PARETONAS_API_KEYS`` may be a JSON list or comma-separated; blanks are dropped."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                value = json.loads(text)
            else:
                value = text.split(",")
        return [k.strip() for k in value if isinstance(k, str) and k.strip()] if isinstance(
            value, list) else value


class SettingsError(ValueError):
    """Invalid ``PARETONAS_*`` variables, as one line naming each variable and its value."""

    @classmethod
    def from_validation(cls, exc: ValidationError) -> SettingsError:
        parts = []
        for e in exc.errors(include_url=False):
            field = str(e["loc"][0]) if e["loc"] else ""
            name = f"PARETONAS_{field.upper()}" if field else "settings"
            parts.append(f"{name}={e.get('input')!r}: {e['msg']}")
        return cls("; ".join(parts))


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:  # a startup error: one line, not a pydantic report
        raise SettingsError.from_validation(exc) from None
