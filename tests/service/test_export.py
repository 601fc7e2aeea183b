"""``trials.csv`` / ``pareto.csv`` on a real database, with a failed trial and a constraint."""

from __future__ import annotations

import csv
import io
import sys

import pytest
from fastapi.testclient import TestClient

from service.interfaces.api.app import create_app
from service.interfaces.client import _frame, flat_trial
from service.interfaces.worker import Worker
from service.settings import Settings
from tests.conftest import table_spec
from tests.search_spaces.test_table import write_table


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    write_table(root / "t.csv", drop_last=True)  # one arch of the grid has no row
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(root))
    app = create_app(Settings(database_url=database_url))
    yield app
    app.state.db.dispose()


def test_trials_csv_has_every_trial_metric_source_and_error(app):
    client = TestClient(app)
    spec = table_spec(constraints=[{"metric": "acc", "min": 0.7}], budget={"trials": 30},
                      strategy={"name": "random"})
    study = client.post("/api/v1/studies", json=spec).json()
    Worker(app.state.db, app.state.settings, worker_id="w").run_once()
    trials = client.get(f"/api/v1/studies/{study['id']}/trials").json()["data"]
    r = client.get(f"/api/v1/studies/{study['id']}/trials.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="study-1-trials.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(x["number"]) for x in rows] == [t["number"] for t in trials] == list(range(30))
    assert {"feasible", "stage", "accuracy", "error", "depth", "op", "width", "acc",
            "latency_ms", "source:acc", "source:latency_ms"} <= set(rows[0])
    # the arch without a row is re-asked, never a trial (equal footing, #17): nothing fails
    assert all(x["state"] == "complete" and x["error"] == "" for x in rows)
    for x, t in zip(rows, trials, strict=True):
        if t["state"] == "complete":
            assert float(x["acc"]) == t["values"]["acc"]
            assert x["feasible"] == str(t["values"]["acc"] >= 0.7)
            assert x["source:acc"] == t["info"]["sources"]["acc"] == "measured"
        assert x["on_front"] == str(t["on_front"]) and x["stage"] == "1"
    front = list(csv.DictReader(io.StringIO(
        client.get(f"/api/v1/studies/{study['id']}/pareto.csv").text)))
    assert front and all(x["on_front"] == "True" and x["feasible"] == "True" for x in front)
    assert set(front[0]) == set(rows[0])  # the same layout: constraints and sources kept
    assert client.get("/api/v1/studies/77/trials.csv").status_code == 404

    frame = _frame(trials, flat_trial)
    assert list(frame["number"]) == list(range(30))
    assert {"depth", "acc", "source:acc", "accuracy", "state", "error"} <= set(frame.columns)


def test_as_frame_without_pandas_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # what a missing package looks like
    with pytest.raises(ImportError, match="as_frame=True needs pandas.*pip install pandas"):
        _frame([], flat_trial)
