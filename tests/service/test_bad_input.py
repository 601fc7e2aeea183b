"""Bad study bodies answer 422 naming the field, on SQLite and PostgreSQL, and write nothing
(issue 22: each of these was a 500, or a 201 with a study that could not run)."""

from __future__ import annotations

import json
import math
import os
import threading

import pytest
from fastapi.testclient import TestClient

from service.engine.safe_values import printable, value_problem
from service.interfaces.api.app import create_app
from service.persistence.models import Study
from service.settings import Settings
from tests.conftest import table_spec


@pytest.fixture
def app(database_url, data_dir):
    app = create_app(Settings(database_url=database_url))
    yield app
    app.state.db.dispose()


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def post_raw(client: TestClient, spec: dict):
    """Python's json writes NaN/Infinity literals and \\ud800 escapes, as a careless client
    would; the server's parser accepts both."""
    return client.post("/api/v1/studies", content=json.dumps(spec),
                       headers={"content-type": "application/json"})


def n_studies(app) -> int:
    with app.state.db.session() as s:
        return s.query(Study).count()


def _with(path: tuple, value) -> dict:
    spec = table_spec(constraints=[{"metric": "acc", "max": 1.0}])
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


CASES = [
    (("budget", "seconds"), math.nan, ["budget", "seconds"]),
    (("budget", "seconds"), math.inf, ["budget", "seconds"]),
    (("name",), "\ud800x", ["name"]),
    (("name",), "a\x00b", ["name"]),
    (("objectives", 0, "reference"), math.inf, ["objectives", 0, "reference"]),
    (("objectives", 0, "reference"), math.nan, ["objectives", 0, "reference"]),
    (("objectives", 0, "reference"), -math.inf, ["objectives", 0, "reference"]),
    (("constraints", 0, "max"), math.nan, ["constraints", 0, "max"]),
    (("search_space", "options", "path"), "t\x00.csv", ["search_space", "options", "path"]),
    (("search_space", "options", "filter"), {"dataset": math.nan},
     ["search_space", "options", "filter"]),
    (("strategy", "options"), {"seed": math.inf}, ["strategy", "options", "seed"]),
    (("strategy", "options"), {"x": ["a", "b\ud800"]}, ["strategy", "options", "x"]),
    (("objectives", 0, "metric"), "acc\x00", ["objectives", 0, "metric"]),
]


@pytest.mark.parametrize(("path", "value", "loc"), CASES,
                         ids=[f"{'.'.join(map(str, c[0]))}={c[1]!r}" for c in CASES])
def test_unstorable_values_are_422_naming_the_field(app, client, path, value, loc):
    r = post_raw(client, _with(path, value))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]  # the echo itself is valid JSON
    assert [e["loc"] for e in detail] == [["body", *loc]], detail
    assert n_studies(app) == 0


def test_unencodable_option_key_is_422(app, client):
    r = post_raw(client, _with(("strategy", "options"), {"k\ud800": 1}))
    assert r.status_code == 422, r.text
    loc = r.json()["detail"][0]["loc"]
    assert loc[:3] == ["body", "strategy", "options"] and loc[3].startswith("k")
    assert n_studies(app) == 0


def test_the_valid_spec_still_passes(app, client):
    r = post_raw(client, table_spec(name="ünïcode ✓ 名前", constraints=[{"metric": "acc",
                                                                        "max": 1e300}]))
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "ünïcode ✓ 名前"
    assert n_studies(app) == 1


def test_value_problem_names_nested_keys():
    assert value_problem({"a": [1, {"b": math.nan}]}) == \
        "['a']: [1]: ['b']: nan is not allowed: numbers must be finite"
    assert "lone surrogate" in value_problem(["\udfff"])
    assert value_problem({"ok": [1, 2.5, "x", None, True]}) is None
    deep: list = []
    for _ in range(40):
        deep = [deep]
    assert "nested" in value_problem(deep)


def test_printable_always_encodes():
    echoed = printable({"a\ud800": [math.nan, -math.inf, b"\xff", "\x00", (1, 2), {3}]})
    text = json.dumps(echoed, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert echoed == {"a\\ud800": ["NaN", "-Infinity", "\\xff", "\x00", [1, 2], [3]]}


@pytest.mark.parametrize("path", ["~nosuchuser_paretonas/x.csv", "a" * 5000, "c" * 600 + "/x",
                                  "fifo.csv", "sub", "missing.csv"])
def test_bad_table_paths_are_422_naming_the_path(app, client, data_dir, path):
    os.mkfifo(data_dir / "fifo.csv")  # a FIFO used to hang the request and a server thread
    (data_dir / "sub").mkdir()
    answers: list = []
    thread = threading.Thread(target=lambda: answers.append(post_raw(client, _with(
        ("search_space", "options", "path"), path))), daemon=True)
    thread.start()
    thread.join(30)
    assert answers, "the request hung"
    r = answers[0]
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["search_space", "options", "path"], detail
    assert n_studies(app) == 0
