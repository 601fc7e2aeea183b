"""Dimension importance (Optuna's fANOVA evaluator) through the API, on a table whose objectives
are each driven by one known dimension."""

from __future__ import annotations

import csv

import pytest
from fastapi.testclient import TestClient

from service.interfaces.api.app import create_app
from service.interfaces.worker import Worker
from service.settings import Settings
from tests.conftest import table_spec


@pytest.fixture
def app(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    with open(root / "imp.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["depth", "op", "width", "acc", "latency_ms"])
        for depth in (1, 2, 3, 4):
            for op in ("a", "b", "c"):
                for width in (8, 16, 32):
                    # acc depends on op only, latency on width only; depth changes nothing
                    w.writerow([depth, op, width, {"a": 0.5, "b": 0.7, "c": 0.9}[op], width])
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(root))
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    yield app
    app.state.db.dispose()


def test_importance_finds_the_dimension_behind_each_objective(app):
    client = TestClient(app)
    spec = table_spec(search_space={"name": "table", "options": {
        "path": "imp.csv", "params": ["depth", "op", "width"]}}, budget={"trials": 36})
    study = client.post("/api/v1/studies", json=spec).json()
    r = client.get(f"/api/v1/studies/{study['id']}/importance")
    assert r.status_code == 200 and r.json()["objectives"] == {}
    assert "importance needs at least 10" in r.json()["message"]
    Worker(app.state.db, app.state.settings, worker_id="w").run_once()
    body = client.get(f"/api/v1/studies/{study['id']}/importance").json()
    assert body["method"].startswith("fANOVA") and body["n_trials"] >= 10
    acc, lat = body["objectives"]["acc"], body["objectives"]["latency_ms"]
    assert sum(acc.values()) == pytest.approx(1) and sum(lat.values()) == pytest.approx(1)
    assert max(acc, key=acc.get) == "op" and acc["op"] > 0.9
    assert max(lat, key=lat.get) == "width" and lat["width"] > 0.9
    assert client.get("/api/v1/studies/404/importance").status_code == 404
