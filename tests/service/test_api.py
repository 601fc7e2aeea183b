"""REST round trips and validation on a real database (SQLite; PostgreSQL when configured)."""

from __future__ import annotations

import csv
import io

import pytest

from service.persistence.models import Study
from tests.conftest import table_spec
from tests.service.helpers import brute_force_front, run_queue


def n_studies(app) -> int:
    with app.state.db.session() as s:
        return s.query(Study).count()


def test_health_and_registries(client):
    assert client.get("/api/v1/health").json()["status"] == "ok"
    spaces = {s["name"]: s for s in client.get("/api/v1/search-spaces").json()["data"]}
    assert "table" in spaces and "path" in spaces["table"]["options_schema"]["properties"]
    strategies = {s["name"] for s in client.get("/api/v1/strategies").json()["data"]}
    assert {"random", "nsga2", "nsga3", "tpe"} <= strategies


def test_submit_run_and_read_back(app, client):
    spec = table_spec(strategy={"name": "nsga2", "options": {"population_size": 6}},
                      budget={"trials": 30})
    r = client.post("/api/v1/studies", json=spec)
    assert r.status_code == 201, r.text
    study = r.json()
    assert study["status"] == "queued" and study["n_trials"] == 30
    run_queue(app)
    study = client.get(f"/api/v1/studies/{study['id']}").json()
    assert study["status"] == "completed" and study["n_complete"] + study["n_failed"] == 30
    assert study["progress"] == 1.0 and study["best_hypervolume"] > 0
    assert [o["key"] for o in study["objectives"]] == ["acc", "latency_ms"]

    trials = client.get(f"/api/v1/studies/{study['id']}/trials?limit=1000").json()
    assert trials["count"] == 30
    assert [t["number"] for t in trials["data"]] == list(range(30))
    page = client.get(f"/api/v1/studies/{study['id']}/trials?offset=10&limit=5").json()
    assert [t["number"] for t in page["data"]] == [10, 11, 12, 13, 14]
    after = client.get(f"/api/v1/studies/{study['id']}/trials?after=27").json()
    assert [t["number"] for t in after["data"]] == [28, 29]

    front = client.get(f"/api/v1/studies/{study['id']}/pareto").json()
    assert {t["number"] for t in front["data"]} == brute_force_front(trials["data"], spec)
    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/api/v1/studies/{study['id']}/pareto.csv").text)))
    assert {int(r["number"]) for r in rows} == {t["number"] for t in front["data"]}
    assert set(rows[0]) >= {"depth", "op", "width", "acc", "latency_ms"}

    hv = client.get(f"/api/v1/studies/{study['id']}/hypervolume").json()
    assert hv["reference_point"] and hv["data"]
    assert hv["data"][-1]["hypervolume"] == pytest.approx(study["best_hypervolume"])


def test_list_filters_and_paginates(app, client):
    ids = [client.post("/api/v1/studies", json=table_spec(name=f"s{i}")).json()["id"]
           for i in range(3)]
    client.post(f"/api/v1/studies/{ids[0]}/cancel")
    listing = client.get("/api/v1/studies?status=queued").json()
    assert listing["count"] == 2 and {s["id"] for s in listing["data"]} == set(ids[1:])
    assert client.get("/api/v1/studies?status=cancelled").json()["count"] == 1
    assert len(client.get("/api/v1/studies?limit=1").json()["data"]) == 1
    assert client.get("/api/v1/studies?status=bogus").status_code == 422


def test_cancelled_study_is_never_run(app, client):
    sid = client.post("/api/v1/studies", json=table_spec()).json()["id"]
    assert client.post(f"/api/v1/studies/{sid}/cancel").json()["status"] == "cancelled"
    run_queue(app)
    study = client.get(f"/api/v1/studies/{sid}").json()
    assert study["status"] == "cancelled" and study["n_complete"] == 0


BAD_SPECS = [
    ({"search_space": {"name": "nope"}}, ["search_space", "name"], "table"),
    ({"strategy": {"name": "annealing"}}, ["strategy", "name"], "nsga2"),
    ({"strategy": {"name": "nsga2", "options": {"pop": 3}}}, ["strategy", "options", "pop"],
     "unknown option 'pop'; allowed: "),
    ({"objectives": [{"metric": "acc", "direction": "maximize"},
                     {"metric": "energy", "direction": "minimize"}]},
     ["objectives", 1, "metric"], "allowed: acc, latency_ms"),
    ({"objectives": [{"metric": "acc", "direction": "maximize"}]}, ["objectives"], "at least 2"),
    ({"objectives": [{"metric": "acc", "direction": "up"},
                     {"metric": "latency_ms", "direction": "minimize"}]},
     ["objectives", 0, "direction"], "maximize"),
    ({"budget": {"trials": 0}}, ["budget", "trials"], "greater than or equal to 1"),
    ({"budget": {"trials": 5000}}, ["budget", "trials"], "limit of 1000"),
    ({"budget": {"trials": "many"}}, ["budget", "trials"], "integer"),
    ({"search_space": {"name": "table", "options": {"path": "/etc/passwd", "params": ["a"]}}},
     ["search_space", "options", "path"], "outside the allowed data directories"),
    ({"search_space": {"name": "table", "options": {"path": "t.csv", "params": ["depth", "x"]}}},
     ["search_space", "options"], "lacks column(s) ['x']"),
    ({"search_space": {"name": "table", "options": {"path": "t.csv"}}},
     ["search_space", "options", "params"], "Field required"),
    ({"seed": -1}, ["seed"], "greater than or equal to 0"),
    ({"colour": "red"}, ["colour"], "Extra inputs"),
]


@pytest.mark.parametrize(("override", "loc", "message"), BAD_SPECS)
def test_bad_specs_are_422s_that_name_the_field_and_write_nothing(app, client, override, loc,
                                                                    message):
    r = client.post("/api/v1/studies", json=table_spec(**override))
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][-len(loc):] == loc or e["loc"] == ["body", *loc] or
               e["loc"][: len(loc)] == loc for e in errors), errors
    assert any(message in e["msg"] for e in errors), errors
    assert n_studies(app) == 0


def test_malformed_json_is_a_422(app, client):
    r = client.post("/api/v1/studies", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.text
    assert n_studies(app) == 0


def test_unknown_study_is_404(client):
    assert client.get("/api/v1/studies/999").status_code == 404
    assert client.get("/api/v1/studies/999/trials").status_code == 404
    assert client.post("/api/v1/studies/999/cancel").status_code == 404
