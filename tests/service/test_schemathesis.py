"""Property-based fuzzing of every operation in the app's OpenAPI schema (schemathesis): whatever
the request, the server answers with a documented 2xx/4xx, never a 5xx. Bounded: a few examples
per operation, against a real SQLite database holding a finished study (so ids can hit)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from service.interfaces.api.app import create_app
from service.interfaces.worker import Worker
from service.settings import Settings
from tests.conftest import table_spec


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory):
    from tests.search_spaces.test_table import write_table

    root = tmp_path_factory.mktemp("fuzz")
    write_table(root / "t.csv")
    mp = pytest.MonkeyPatch()
    mp.setenv("PARETONAS_DATA_DIRS", str(root))
    app = create_app(Settings(database_url=f"sqlite:///{root / 'fuzz.db'}", max_trials=50,
                              max_body_bytes=20_000))
    from fastapi.testclient import TestClient

    client = TestClient(app)
    for _ in range(2):  # studies 1 and 2 exist, with trials, front and hypervolume
        assert client.post("/api/v1/studies", json=table_spec(budget={"trials": 8})).status_code \
            == 201
    for path in ("search-spaces", "strategies", "devices", "profilers"):  # import plugins now
        client.get(f"/api/v1/{path}")
    worker = Worker(app.state.db, app.state.settings, worker_id="fuzz")
    while worker.run_once() is not None:
        pass
    yield app
    app.state.db.dispose()
    mp.undo()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)


def test_no_request_makes_the_server_fail(api_schema):
    # one Hypothesis run per operation, driven here rather than by schemathesis' pytest plugin
    # (its fixture loader reaches into pytest internals that moved)
    failures: list[str] = []
    operations = 0
    calls: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:
            calls.append(case.method)
            response = case.call(timeout=120)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {response.text[:300]}")

        fuzz()
    assert operations >= 10, "the schema lost its operations"
    assert len(calls) >= 5 * operations and {"GET", "POST"} <= set(calls)
    assert not failures, "\n".join(sorted(set(failures))[:20])
