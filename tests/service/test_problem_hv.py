"""Comparable hypervolume: one box per problem, values in [0, 1], the same number from the
list, the study and the curve; checked against a brute-force 2-D sweep."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.engine.problem_hv import Normaliser, history, problem_reference
from service.engine.resolve import resolve_spec
from service.engine.spec import StudySpec
from service.interfaces.api.app import create_app
from service.interfaces.worker import Worker
from service.settings import Settings
from tests.conftest import table_spec


def sweep_2d(points: list[tuple[float, float]]) -> float:
    """Area dominated in the unit square by (minimised) points, by a plain sweep."""
    area, best_y = 0.0, 1.0
    for x, y in sorted(points):
        if y < best_y:
            area += (1 - x) * (best_y - y)
            best_y = y
    return area


def test_normaliser_maps_the_box_to_the_unit_square():
    ref = {"best": [1.0, 2.0], "worst": [0.0, 10.0]}  # acc maximised, latency minimised
    norm = Normaliser(ref, ["maximize", "minimize"])
    assert norm.losses(np.array([[1.0, 2.0], [0.0, 10.0], [0.5, 6.0], [1.2, 20]])).tolist() == \
        [[0, 0], [1, 1], [0.5, 0.5], [0, 1]]  # outside the box: clipped
    assert norm.hypervolume(np.array([[1.0, 2.0]])) == 1.0
    assert norm.hypervolume(np.array([[0.5, 6.0]])) == pytest.approx(0.25)
    pts = np.array([[0.9, 8.0], [0.6, 4.0], [0.3, 3.0]])
    expect = sweep_2d([tuple(p) for p in norm.losses(pts)])
    assert norm.hypervolume(pts) == pytest.approx(expect)
    curve = history(ref, ["maximize", "minimize"], [(0, [0.3, 3.0]), (1, [0.2, 9.0]),
                                                    (2, [0.6, 4.0]), (3, [0.9, 8.0])])
    assert [n for n, _ in curve] == [0, 2, 3]  # trial 1 is dominated: no change
    assert curve[-1][1] == pytest.approx(expect)


def test_problem_reference_of_a_table(data_dir):
    spec = StudySpec.model_validate(table_spec())
    ref = problem_reference(resolve_spec(spec))
    assert ref["best"] == [0.83, 2.0] and ref["worst"] == [0.59, 13.0]
    fixed = table_spec(objectives=[{"metric": "acc", "direction": "maximize"},
                                   {"metric": "latency_ms", "direction": "minimize",
                                    "reference": 8.0}])
    ref = problem_reference(resolve_spec(StudySpec.model_validate(fixed)))
    assert ref["worst"] == [0.59, 8.0] and ref["basis"][1] == "row of the table, reference"


@pytest.fixture
def app(database_url, data_dir):
    app = create_app(Settings(database_url=database_url))
    yield app
    app.state.db.dispose()


def test_studies_of_one_problem_are_comparable(app):
    client = TestClient(app)
    ids = [client.post("/api/v1/studies", json=table_spec(seed=seed, budget={"trials": n})
                       ).json()["id"] for seed, n in ((0, 4), (1, 14))]
    worker = Worker(app.state.db, app.state.settings, worker_id="w")
    while worker.run_once() is not None:
        pass
    listed = {s["id"]: s for s in client.get("/api/v1/studies").json()["data"]}
    for study_id in ids:
        study = client.get(f"/api/v1/studies/{study_id}").json()
        hv = study["hypervolume_normalised"]
        assert 0 < hv <= 1 and listed[study_id]["hypervolume_normalised"] == hv
        front = client.get(f"/api/v1/studies/{study_id}/pareto").json()["data"]
        losses = [((0.83 - t["values"]["acc"]) / 0.24, (t["values"]["latency_ms"] - 2) / 11)
                  for t in front]
        assert hv == pytest.approx(sweep_2d(losses))
        curve = client.get(f"/api/v1/studies/{study_id}/hypervolume?reference=problem").json()
        values = [p["hypervolume"] for p in curve["data"]]
        assert values == sorted(values) and values[-1] == pytest.approx(hv)
        assert curve["reference"] == "problem" and curve["last_trial"] == study["n_trials"] - 1
        own = client.get(f"/api/v1/studies/{study_id}/hypervolume").json()
        assert own["reference"] == "study" and own["reference_point"] == study["reference_point"]
    r = client.get(f"/api/v1/studies/{ids[0]}/hypervolume?reference=nadir")
    assert r.status_code == 422
