"""Viewer routes without a browser: pages, assets, the plotly bundle, and the columnar
``/studies/{id}/points`` checked against ``/trials`` on a real database and real worker."""

from __future__ import annotations

import gzip
import json

import pytest
from fastapi.testclient import TestClient

from service.interfaces.api.app import create_app
from service.interfaces.worker import Worker
from service.persistence.models import Trial
from service.settings import Settings
from tests.conftest import table_spec


@pytest.fixture
def app(database_url, data_dir):
    app = create_app(Settings(database_url=database_url))
    yield app
    app.state.db.dispose()


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


def _run(app, client, **overrides) -> int:
    res = client.post("/api/v1/studies", json=table_spec(**overrides))
    assert res.status_code == 201, res.text
    Worker(app.state.db, app.state.settings, worker_id="w").run_forever(exit_when_idle=True)
    return res.json()["id"]


@pytest.mark.parametrize("path", ["/", "/studies/3", "/compare", "/compare?ids=1,2"])
def test_pages_are_html_and_load_only_local_assets(client, path):
    res = client.get(path)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert "http://" not in res.text and "https://" not in res.text  # no CDN
    for ref in [p.split('"')[0] for p in res.text.split('src="')[1:]]:
        assert client.get(ref).status_code == 200, ref


def test_study_page_needs_a_numeric_id(client):
    assert client.get("/studies/abc").status_code == 422


def test_plotly_bundle_is_served_gzipped_with_an_etag(client):
    raw = client.get("/static/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/javascript")
    assert "content-encoding" not in raw.headers
    assert "plotly" in raw.text[:5000].lower()
    zipped = client.get("/static/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert len(zipped.content) == len(raw.content)  # the client decoded it back
    assert len(gzip.compress(raw.content)) < len(raw.content) / 2
    again = client.get("/static/vendor/plotly.min.js",
                       headers={"If-None-Match": raw.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("name", ["nope.js", ".hidden", "viewer.exe", "..%2Fapi%2Fweb.py"])
def test_unknown_assets_are_404(client, name):
    res = client.get(f"/static/{name}")
    assert res.status_code == 404
    if "%2F" not in name:
        assert name in res.json()["detail"]


def test_points_match_trials_column_by_column(app, client):
    study_id = _run(app, client, budget={"trials": 15})
    full = client.get(f"/api/v1/studies/{study_id}/trials", params={"limit": 100}).json()["data"]
    res = client.get(f"/api/v1/studies/{study_id}/points")
    assert res.status_code == 200
    body = res.json()
    cols = body["columns"]
    assert body["count"] == len(full) == 15
    for field in ("number", "state", "on_front", "stage", "worker", "error", "arch", "values"):
        assert cols[field] == [t[field] for t in full], field
    assert cols["accuracy"] == [t["info"].get("accuracy") for t in full]
    assert cols["duration_s"] == pytest.approx([t["duration_s"] for t in full])

    later = client.get(f"/api/v1/studies/{study_id}/points", params={"after": 9}).json()
    assert later["columns"]["number"] == list(range(10, 15)) and later["count"] == 5
    page = client.get(f"/api/v1/studies/{study_id}/points", params={"offset": 2, "limit": 3})
    assert page.json()["columns"]["number"] == [2, 3, 4]


def test_points_write_null_for_non_finite_values(app, client):
    if app.state.db.is_postgres:
        pytest.skip("PostgreSQL's json type cannot hold NaN in the first place")
    study_id = _run(app, client, budget={"trials": 3})
    with app.state.db.session() as s, s.begin():
        trial = s.query(Trial).filter_by(study_id=study_id, number=1).one()
        trial.values = {**trial.values, "acc": float("nan")}
    res = client.get(f"/api/v1/studies/{study_id}/points")
    assert res.status_code == 200
    values = json.loads(res.text)["columns"]["values"]  # strict JSON: would fail on NaN
    assert values[1]["acc"] is None and values[0]["acc"] is not None


@pytest.mark.parametrize("params,field", [({"after": -2}, "after"), ({"limit": 0}, "limit"),
                                          ({"limit": 100_001}, "limit"),
                                          ({"offset": -1}, "offset")])
def test_points_validate_their_query(app, client, params, field):
    study_id = _run(app, client, budget={"trials": 2})
    res = client.get(f"/api/v1/studies/{study_id}/points", params=params)
    assert res.status_code == 422
    assert res.json()["detail"][0]["loc"][-1] == field


def test_points_of_a_missing_study_are_404(client):
    res = client.get("/api/v1/studies/12345/points")
    assert res.status_code == 404 and "12345" in res.json()["detail"]


def test_points_say_which_accuracies_are_predicted(app, client):
    study_id = _run(app, client, budget={"trials": 16},
                    accuracy={"mode": "surrogate", "initial": 4})
    full = client.get(f"/api/v1/studies/{study_id}/trials", params={"limit": 100}).json()["data"]
    cols = client.get(f"/api/v1/studies/{study_id}/points").json()["columns"]
    assert cols["accuracy"] == [t["info"].get("accuracy") for t in full]
    assert set(cols["accuracy"]) <= {"measured", "predicted", None}
    assert "measured" in cols["accuracy"]
