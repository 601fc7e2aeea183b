"""Shared fixtures: databases (SQLite always, PostgreSQL when PARETONAS_TEST_DATABASE_URL is
set), a small benchmark table under a temporary data directory, and study specs on it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.search_spaces.test_table import write_table

PG_URL = os.environ.get("PARETONAS_TEST_DATABASE_URL")


def _backends() -> list:
    params = [pytest.param("sqlite", id="sqlite")]
    params.append(pytest.param("postgres", id="postgres", marks=pytest.mark.skipif(
        not PG_URL, reason="PARETONAS_TEST_DATABASE_URL not set (.ci/run sets it)")))
    return params


@contextmanager
def fresh_postgres_database(prefix: str = "paretonas_test") -> Iterator[str]:
    """A new, empty database on the server at PARETONAS_TEST_DATABASE_URL, dropped afterwards.
    The admin engine pre-pings, so clean-up also works after the server was restarted."""
    assert PG_URL
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=_backends())
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'paretonas.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    write_table(root / "t.csv")
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(root))
    return root


def table_spec(**overrides) -> dict:
    spec = {
        "name": "table study",
        "search_space": {"name": "table", "options": {
            "path": "t.csv", "params": ["depth", "op", "width"], "filter": {"dataset": "a"}}},
        "objectives": [{"metric": "acc", "direction": "maximize"},
                       {"metric": "latency_ms", "direction": "minimize"}],
        "strategy": {"name": "random"},
        "budget": {"trials": 12},
        "seed": 0,
    }
    spec.update(overrides)
    return spec
