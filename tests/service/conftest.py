"""Fixtures the service tests share: an app on a fresh database with the table study's data
(``app``, ``client``) and a live server on SQLite (``server``). A test module that needs other
settings defines its own fixture of the same name."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.interfaces.api.app import create_app
from service.settings import Settings
from tests.service.live import live_server


@pytest.fixture
def app(database_url, data_dir):
    app = create_app(Settings(database_url=database_url, max_trials=1000))
    yield app
    app.state.db.dispose()


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


@pytest.fixture
def server(tmp_path, data_dir):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'live.db'}", poll_seconds=0.05)
    with live_server(settings) as url:
        yield url
