"""``bench/soak.py``'s database check finds lost trials and held leases (so its zeros mean
something). Duplicates cannot be planted: the schema's unique (study, number) key refuses them."""

from __future__ import annotations

from sqlalchemy import delete, update

from bench.soak import check_trials
from service.engine.resolve import resolve_spec
from service.engine.spec import StudySpec
from service.interfaces.worker import Worker
from service.persistence import crud
from service.persistence.db import Database
from service.persistence.models import Study, Trial
from service.settings import Settings
from tests.conftest import table_spec


def test_check_trials_finds_lost_trials_and_held_leases(database_url, data_dir):
    db = Database(database_url)
    with db.session() as s:
        sid = crud.create_study(s, resolved=resolve_spec(StudySpec.model_validate(
            table_spec(budget={"trials": 8})))).id
    Worker(db, Settings(database_url=database_url)).run_once()
    clean = check_trials(database_url)
    assert clean["trials"] == 8 and clean["studies"] == {"completed": 1}
    assert clean["studies_with_lost_trials"] == [] and clean["duplicated_trials"] == 0
    assert clean["leases_held_after_stop"] == 0

    with db.engine.begin() as conn:  # the last trial gone: counters disagree with the rows
        conn.execute(delete(Trial).where(Trial.study_id == sid, Trial.number == 7))
    assert check_trials(database_url)["studies_with_lost_trials"] == [sid]
    with db.engine.begin() as conn:  # counters fixed, but a completed study short of budget
        conn.execute(update(Study).where(Study.id == sid).values(n_complete=Study.n_complete - 1))
    assert check_trials(database_url)["studies_with_lost_trials"] == [sid]
    with db.engine.begin() as conn:  # a gap in the numbers
        conn.execute(update(Study).where(Study.id == sid).values(n_trials=7))
        conn.execute(delete(Trial).where(Trial.study_id == sid, Trial.number == 2))
        conn.execute(update(Study).where(Study.id == sid).values(n_complete=Study.n_complete - 1,
                                                                 status="cancelled",
                                                                 lease_owner="someone"))
    after = check_trials(database_url)
    assert after["studies_with_lost_trials"] == [sid] and after["leases_held_after_stop"] == 1
    db.dispose()
