"""Study lifecycle over REST on a real database (SQLite; PostgreSQL when configured): delete,
rename/tags/notes, resume with a new budget, idempotent submits, and the schema migration."""

from __future__ import annotations

import threading

from sqlalchemy import select, text

from service.engine.lifecycle import resumed_spec, stage1_length
from service.engine.resolve import resolve_spec
from service.engine.spec import BudgetSpec, StudySpec
from service.interfaces.worker import Worker
from service.persistence.db import Database, make_engine, utcnow
from service.persistence.models import HypervolumePoint, Study, Trial
from service.persistence.queue import claim_study
from tests.conftest import table_spec
from tests.service.helpers import cancel_once_complete, run_queue

API = "/api/v1/studies"



def submit(client, **overrides) -> dict:
    r = client.post(API, json=table_spec(**overrides))
    assert r.status_code == 201, r.text
    return r.json()


def rows(app, model, study_id: int) -> int:
    with app.state.db.session() as s:
        return len(s.scalars(select(model).where(model.study_id == study_id)).all())


def test_delete_a_finished_study_with_its_trials(app, client):
    study = submit(client, budget={"trials": 6})
    keep = submit(client, name="other", budget={"trials": 3})
    run_queue(app)
    assert rows(app, Trial, study["id"]) == 6 and rows(app, HypervolumePoint, study["id"]) > 0
    r = client.delete(f"{API}/{study['id']}")
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"{API}/{study['id']}").status_code == 404
    assert rows(app, Trial, study["id"]) == rows(app, HypervolumePoint, study["id"]) == 0
    assert rows(app, Trial, keep["id"]) == 3  # nothing else touched
    assert client.delete(f"{API}/{study['id']}").status_code == 404


def test_a_running_study_is_refused_until_cancelled(app, client):
    study = submit(client, budget={"trials": 6})
    assert claim_study(app.state.db, "w1", lease_seconds=60) == study["id"]  # a worker has it
    r = client.delete(f"{API}/{study['id']}")
    assert r.status_code == 409 and "cancel it first" in r.json()["detail"]
    assert client.get(f"{API}/{study['id']}").json()["status"] == "running"
    queued = submit(client, name="queued", budget={"trials": 6})
    assert client.delete(f"{API}/{queued['id']}").status_code == 204  # nobody runs it yet


def test_rename_tags_notes(client):
    study = submit(client)
    r = client.patch(f"{API}/{study['id']}", json={"name": "cora, take 2",
                                                    "tags": ["gnn", "cora", "gnn"]})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "cora, take 2" and r.json()["tags"] == ["gnn", "cora"]
    r = client.patch(f"{API}/{study['id']}", json={"notes": "params constraint too tight"})
    body = r.json()
    assert body["notes"] == "params constraint too tight" and body["tags"] == ["gnn", "cora"]
    assert client.get(f"{API}/{study['id']}").json()["name"] == "cora, take 2"
    assert client.patch(f"{API}/{study['id']}", json={"tags": None}).json()["tags"] == []
    for bad, where in (({}, "nothing to change"), ({"name": ""}, "name"),
                       ({"name": None}, "needs a name"), ({"tags": ["a b"]}, "tags"),
                       ({"colour": "red"}, "colour")):
        r = client.patch(f"{API}/{study['id']}", json=bad)
        assert r.status_code == 422 and where in r.text, (bad, r.text)
    assert client.patch(f"{API}/999", json={"name": "x"}).status_code == 404


def test_extend_a_completed_study(app, client):
    study = submit(client, strategy={"name": "nsga2", "options": {"population_size": 4}},
                   budget={"trials": 8})
    run_queue(app)
    before = client.get(f"{API}/{study['id']}/trials").json()["data"]
    r = client.post(f"{API}/{study['id']}/resume", json={"budget": {"trials": 16}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "queued" and r.json()["n_trials"] == 16
    assert r.json()["spec"]["budget"]["trials"] == 16
    run_queue(app)
    done = client.get(f"{API}/{study['id']}").json()
    assert done["status"] == "completed" and done["n_complete"] + done["n_failed"] == 16
    after = client.get(f"{API}/{study['id']}/trials").json()["data"]
    assert [t["number"] for t in after] == list(range(16))
    strip = ("on_front",)  # the front moves on; the trials themselves are kept as they were
    assert ([{k: v for k, v in t.items() if k not in strip} for t in after[:8]]
            == [{k: v for k, v in t.items() if k not in strip} for t in before])
    _assert_nothing_evaluated_twice(after)


def _assert_nothing_evaluated_twice(trials: list[dict]) -> None:
    first: dict[str, int] = {}
    for t in trials:
        if t["arch_key"] in first:  # a repeat is recorded with the first result, not measured
            assert t["info"]["duplicate_of"] == first[t["arch_key"]], t
        else:
            assert "duplicate_of" not in t["info"]
            first[t["arch_key"]] = t["number"]


def test_resume_a_cancelled_study_continues_from_its_trials(app, client):
    study = submit(client, budget={"trials": 200})
    worker = Worker(app.state.db, app.state.settings, worker_id="w-cancel")
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    cancel_once_complete(app.state.db, study["id"], thread, n_complete=3, timeout=60)
    cancelled = client.get(f"{API}/{study['id']}").json()
    assert cancelled["status"] == "cancelled"
    ran = cancelled["n_complete"] + cancelled["n_failed"]
    before = client.get(f"{API}/{study['id']}/trials").json()["data"]
    r = client.post(f"{API}/{study['id']}/resume", json={"budget": {"trials": ran + 5}})
    assert r.status_code == 200 and r.json()["cancel_requested"] is False
    run_queue(app)
    done = client.get(f"{API}/{study['id']}").json()
    assert done["status"] == "completed" and done["n_complete"] + done["n_failed"] == ran + 5
    after = client.get(f"{API}/{study['id']}/trials").json()["data"]
    assert [t["number"] for t in after] == list(range(ran + 5))
    assert [t["arch_key"] for t in after[:ran]] == [t["arch_key"] for t in before]
    _assert_nothing_evaluated_twice(after)


def test_resume_refusals(app, client):
    study = submit(client, budget={"trials": 5})
    r = client.post(f"{API}/{study['id']}/resume", json={"budget": {"trials": 10}})
    assert r.status_code == 409 and "queued" in r.json()["detail"]
    run_queue(app)
    r = client.post(f"{API}/{study['id']}/resume", json={"budget": {"trials": 5}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["budget", "trials"]
    assert "not more than the 5" in r.json()["detail"][0]["msg"]
    r = client.post(f"{API}/{study['id']}/resume", json={"budget": {"trials": 5000}})
    assert r.status_code == 422 and "limit of 1000" in r.text
    r = client.post(f"{API}/{study['id']}/resume", json={"trials": 10})
    assert r.status_code == 422
    assert client.post(f"{API}/999/resume", json={"budget": {"trials": 9}}).status_code == 404


def test_resuming_a_two_stage_study_keeps_its_stage_1(data_dir):
    spec = StudySpec.model_validate(table_spec(stages=2, stage1_dims=["depth"],
                                               budget={"trials": 20}))
    space = resolve_spec(spec).space
    assert stage1_length(spec, space) == 2
    longer = resumed_spec(spec, BudgetSpec(trials=100), n_finished=20, stage1_trials=2)
    assert stage1_length(longer, space) == 2 and longer.budget.trials == 100


def test_idempotency_key_and_same_spec_answer(app, client):
    spec = table_spec(budget={"trials": 5})
    first = client.post(API, json=spec, headers={"Idempotency-Key": "run-42"})
    assert first.status_code == 201
    again = client.post(API, json=spec, headers={"Idempotency-Key": "run-42"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert client.get(API).json()["count"] == 1
    other = client.post(API, json=table_spec(budget={"trials": 6}),
                        headers={"Idempotency-Key": "run-42"})
    assert other.status_code == 409 and "different spec" in other.json()["detail"]
    # no key: a second study is created, and told about the first
    dup = client.post(API, json={**spec, "name": "again", "budget": {"trials": 9}}).json()
    same = [w for w in dup["extra"]["warnings"] if w["code"] == "same_spec"]
    assert len(same) == 1 and f"study {first.json()['id']} (queued, 0 trials)" in \
        same[0]["message"]
    fresh = client.post(API, json=table_spec(seed=7)).json()
    assert "warnings" not in fresh["extra"]


def test_migration_fills_existing_studies(database_url):
    """A database at revision 0001 with a study in it upgrades: tags [] and notes ''."""
    from alembic import command
    from alembic.config import Config

    from service.persistence.db import MIGRATIONS

    engine = make_engine(database_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        now = utcnow()
        conn.execute(text(
            "INSERT INTO studies (id, name, search_space, spec, status, n_trials, n_complete, "
            "n_failed, extra, cancel_requested, created_at, updated_at) VALUES (1, 'old', "
            "'table', '{}', 'completed', 1, 1, 0, '{}', false, :now, :now)"), {"now": now})
    engine.dispose()
    db = Database(database_url)  # migrates to head
    try:
        with db.session() as s:
            old = s.get(Study, 1)
            assert old.tags == [] and old.notes == "" and old.idempotency_key is None
    finally:
        db.dispose()
