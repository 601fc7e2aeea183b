"""Service settings from ``PARETONAS_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARETONAS_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///paretonas.db",
        description="SQLAlchemy URL (default SQLite file; postgresql+psycopg://...)",
    )
    lease_seconds: float = Field(default=30.0, gt=0, description="how long a worker's claim lasts")
    heartbeat_seconds: float = Field(default=5.0, gt=0, description="how often a worker renews it")
    poll_seconds: float = Field(default=1.0, gt=0, description="idle worker's queue poll period")
    config_file: Path | None = Field(default=None, description="server config (YAML): devices")
    max_trials: int = Field(default=100_000, ge=1, description="largest budget.trials accepted")
    max_seconds: float = Field(default=7 * 24 * 3600, gt=0, description="largest budget.seconds")


@lru_cache
def get_settings() -> Settings:
    return Settings()
