"""Both ``TrialStore``s meet the store contract: memory, and the database on every backend."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from service.engine.records import MemoryStore
from service.engine.resolve import resolve_spec
from service.engine.spec import StudySpec
from service.persistence import crud
from service.persistence.db import Database
from service.persistence.models import Study
from service.persistence.queue import claim_study
from service.persistence.store import DbStore
from tests.conftest import table_spec
from tests.contracts.trial_store import StoreUnderTest, TrialStoreContract


class TestMemoryStore(TrialStoreContract):
    @pytest.fixture
    def store(self):
        s = MemoryStore()
        return StoreUnderTest(s, extra=lambda: s.extra,
                              best_hypervolume=lambda: s.best_hypervolume)


class TestDbStore(TrialStoreContract):
    @pytest.fixture
    def store(self, database_url, data_dir):
        db = Database(database_url)
        with db.session() as s:
            sid = crud.create_study(
                s, resolved=resolve_spec(StudySpec.model_validate(table_spec()))).id
        assert claim_study(db, "me", lease_seconds=60) == sid
        store = DbStore(db, sid, "me", lease_seconds=60)

        def row() -> Study:
            with db.session() as s:
                return s.get(Study, sid)

        def steal() -> None:
            with db.session() as s, s.begin():
                s.execute(update(Study).where(Study.id == sid).values(lease_owner="other"))

        yield StoreUnderTest(store, extra=lambda: row().extra or {},
                             best_hypervolume=lambda: row().best_hypervolume, steal=steal)
        db.dispose()
