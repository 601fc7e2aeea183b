"""Warnings as data: checks at submit and start, and why a finished study has no feasible trial.
Real database (SQLite; PostgreSQL when configured), real worker, real table space."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.engine.checks import explain_no_feasible, study_warnings
from service.engine.records import TrialRecord
from service.engine.resolve import resolve_spec
from service.engine.spec import StudySpec
from service.interfaces.api.app import create_app
from service.interfaces.worker import Worker
from service.settings import Settings
from tests.conftest import table_spec

SHARED_DATA = Path("/work/shared/data")


@pytest.fixture
def app(database_url, data_dir):
    app = create_app(Settings(database_url=database_url, max_trials=1000))
    yield app
    app.state.db.dispose()


def run_queue(app) -> None:
    worker = Worker(app.state.db, app.state.settings, worker_id="test-worker")
    while worker.run_once() is not None:
        pass


def codes(spec: dict) -> dict[str, str]:
    found = study_warnings(resolve_spec(StudySpec.model_validate(spec)))
    return {w["field"]: w["code"] for w in found}


def test_constraint_no_row_meets(data_dir):
    # the table's latencies span 2..13 ms
    spec = table_spec(constraints=[{"metric": "latency_ms", "max": 1.5}])
    found = study_warnings(resolve_spec(StudySpec.model_validate(spec)))
    assert [w["code"] for w in found] == ["constraint_unsatisfiable"]
    assert found[0]["field"] == "constraints.0"
    assert "latency_ms <= 1.5" in found[0]["message"] and "spans 2 to 13" in found[0]["message"]
    assert codes(table_spec(constraints=[{"metric": "latency_ms", "max": 5}])) == {}


def test_constraints_that_no_row_meets_together(data_dir):
    # fast rows (<= 3 ms) all have acc <= 0.69; accurate ones (>= 0.75) are slower
    spec = table_spec(constraints=[{"metric": "latency_ms", "max": 3},
                                   {"metric": "acc", "min": 0.75}])
    assert codes(spec) == {"constraints": "constraints_unsatisfiable"}


def test_constant_objective(data_dir):
    spec = table_spec(search_space={"name": "table", "options": {
        "path": "t.csv", "params": ["depth", "op", "width"], "filter": {"dataset": "b"}}})
    assert codes(spec) == {"objectives.0": "constant_objective",
                           "objectives.1": "constant_objective"}


def test_accuracy_mode_that_cannot_screen(tmp_path, monkeypatch):
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "acc", "latency_ms", "recall"])
        for a in range(12):
            w.writerow([a, 0.5 + a / 30, 1 + a, 0.9 - a / 40])
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    spec = table_spec(search_space={"name": "table", "options": {"path": "m.csv",
                                                                 "params": ["a"]}},
                      constraints=[{"metric": "recall", "min": 0.7}],
                      accuracy={"mode": "surrogate"})
    assert codes(spec) == {"accuracy.mode": "accuracy_not_screened"}
    # the screen really is off: the evaluator measures every trial (what the warning says)
    from service.engine.evaluation import make_screen

    assert make_screen(resolve_spec(StudySpec.model_validate(spec))) is None


def _rec(n: int, values: dict, state: str = "complete", **info) -> TrialRecord:
    now = dt.datetime.now(dt.UTC)
    return TrialRecord(number=n, arch={"a": n}, arch_key=str(n), values=values, state=state,
                       started_at=now, finished_at=now, info=info)


def test_explain_no_feasible_counts_and_names_the_constraint():
    spec = StudySpec.model_validate(table_spec(constraints=[
        {"metric": "latency_ms", "max": 1.0}, {"metric": "acc", "min": 0.2}]))
    records = [_rec(0, {"acc": 0.5, "latency_ms": 3.0}), _rec(1, {"acc": 0.1, "latency_ms": 2}),
               _rec(2, {}, state="failed"), _rec(3, {"acc": 0.9, "latency_ms": 1.5}),
               _rec(4, {"acc": 0.5, "latency_ms": 3.0}, duplicate_of=0)]
    why = explain_no_feasible(spec, records)
    assert why["failed"] == 1 and why["infeasible"] == 3 and why["trials"] == 5
    assert why["repeats"] == 1 and "1 repeats an arch already tried" in why["message"]
    assert why["most_excluding"] == {"field": "constraints.0", "constraint": "latency_ms <= 1",
                                     "violated_by": 3, "closest": 1.5}
    assert "constraints.0 (latency_ms <= 1) excluded 3, the closest came to 1.5" in why["message"]
    records.append(_rec(5, {"acc": 0.9, "latency_ms": 0.5}))
    assert explain_no_feasible(spec, records) is None


def test_submit_and_finished_study_carry_the_warnings(app):
    client = TestClient(app)
    spec = table_spec(constraints=[{"metric": "latency_ms", "max": 1.5}], budget={"trials": 6})
    r = client.post("/api/v1/studies", json=spec)
    assert r.status_code == 201, r.text
    study = r.json()
    assert [w["code"] for w in study["extra"]["warnings"]] == ["constraint_unsatisfiable"]
    run_queue(app)
    study = client.get(f"/api/v1/studies/{study['id']}").json()
    assert study["status"] == "completed" and study["best_hypervolume"] is None
    # the start-time check found the same thing: recorded once
    assert [w["code"] for w in study["extra"]["warnings"]] == ["constraint_unsatisfiable"]
    why = study["extra"]["no_feasible"]
    assert why["infeasible"] == why["trials"] == 6 and why["failed"] == 0
    assert why["most_excluding"]["field"] == "constraints.0"
    # a feasible study records no explanation
    ok = client.post("/api/v1/studies", json=table_spec(budget={"trials": 4})).json()
    assert "warnings" not in ok["extra"]
    run_queue(app)
    assert client.get(f"/api/v1/studies/{ok['id']}").json()["extra"]["no_feasible"] is None


@pytest.mark.skipif(not (SHARED_DATA / "nas-bench-graph").is_dir(),
                    reason="the NAS-Bench-Graph table is not in /work/shared/data")
def test_readme_first_example_can_be_feasible(monkeypatch):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    spec = json.loads(re.search(r"```json\n(\{\"name\": \"cora front\".*?)```", readme,
                                re.S).group(1))
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(SHARED_DATA))
    assert study_warnings(resolve_spec(StudySpec.model_validate(spec))) == []
    spec["constraints"] = [{"metric": "params_M", "max": 0.2}]  # the example as it was
    assert codes(spec) == {"constraints.0": "constraint_unsatisfiable"}


def test_run_in_process_records_and_prints_them(tmp_path, data_dir):
    from tests.service.test_client_cli import cli

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(table_spec(constraints=[{"metric": "latency_ms", "max": 1.5}],
                                          budget={"trials": 5})))
    out = tmp_path / "result.json"
    r = cli("run", str(spec), "-o", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "warning: constraints.0: no row of the table meets latency_ms <= 1.5" in r.stderr
    assert "warning: no feasible trial: none of 5 trials is feasible" in r.stderr
    extra = json.loads(out.read_text())["study"]["extra"]
    assert [w["code"] for w in extra["warnings"]] == ["constraint_unsatisfiable"]
    assert extra["no_feasible"]["trials"] == 5


def test_a_space_whose_inherited_ranking_is_poor_warns(tmp_path, monkeypatch):
    """A space whose weight-sharing figures (search_spaces/data/weight_sharing.json, here a
    stand-in) rank subnets below tau 0.6 for the study's way of scoring warns the study."""
    from search_spaces import ranking
    from service.engine.checks import _study_warnings
    from service.engine.resolve import resolve_spec
    from service.engine.spec import StudySpec

    figures = tmp_path / "weight_sharing.json"
    figures.write_text(json.dumps({"randlanet": {
        "kendall_tau": ranking.POOR_TAU - 0.2, "kendall_tau_recalibrated": ranking.POOR_TAU + 0.1,
        "command": "python bench/weight_sharing.py --full"}}))
    monkeypatch.setattr(ranking, "FIGURES", figures)
    ranking._figures.cache_clear()
    try:
        codes = {}
        for options in ({}, {"calibrate_bn": 4}):
            spec = StudySpec.model_validate({
                "name": "rooms", "search_space": {"name": "randlanet", "options": options},
                "objectives": [{"metric": "miou", "direction": "maximize"},
                               {"metric": "macs", "direction": "minimize"}],
                "budget": {"trials": 2}})
            codes[bool(options)] = [w["code"] for w in _study_warnings(resolve_spec(spec))]
    finally:
        ranking._figures.cache_clear()
    assert "inherited_ranking" in codes[False]
    # scored with BN recalibration, the study gets the recalibrated tau: above the bar
    assert "inherited_ranking" not in codes[True]
