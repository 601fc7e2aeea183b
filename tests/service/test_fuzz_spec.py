"""Property-based fuzzing of study bodies against a live server on SQLite and PostgreSQL:
NaN/inf, huge numbers, odd unicode (NUL, lone surrogates, astral characters) and odd paths
anywhere in a ``StudySpec``. Whatever comes in: never a 5xx, and a study is either written
whole (readable back, listed) or not at all (issue 22)."""

from __future__ import annotations

import json
import math
import os

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.settings import Settings
from tests.conftest import table_spec
from tests.service.live import live_server

#: A few seconds per database; raise locally (HYPOTHESIS_EXAMPLES=2000) for a deeper search.
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "120"))

odd_floats = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 1e-300,
                     2.0**63, 1e19]),
    st.floats(allow_nan=True, allow_infinity=True),
)
odd_ints = st.one_of(
    st.sampled_from([0, -1, 2**31, 2**32, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30]),
    st.integers(),
)
odd_text = st.one_of(
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\U0001f600", "é" * 300,
                     "\u202e", "\ufeff", "\\", "'", '"', "%00", "NaN", "Infinity"]),
    st.text(st.characters(codec=None, blacklist_categories=()), max_size=40),
)
odd_paths = st.sampled_from([
    "~nosuchuser/x.csv", "~/t.csv", "a" * 5000, "b" * 300 + "/x.csv", "t\x00.csv", "t.csv\x00",
    "../t.csv", "/etc/passwd", "/dev/zero", "/proc/self/environ", "fifo.csv", ".", "", "/",
    "sub", "loop", "t.csv/", "./t.csv", "t\ud800.csv", "t.csv" + "/.." * 50, "\\\\server\\x",
])
# plausible values too, so that a good share of bodies is accepted and stored (and read back)
plausible = st.one_of(
    st.floats(0.01, 1e6), st.integers(1, 50), st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["t.csv", "acc", "latency_ms", "random", "table", "maximize", "a"]),
)
leaf = st.one_of(plausible, odd_floats, odd_ints, odd_text, odd_paths, st.none(), st.booleans())
value = st.one_of(plausible, leaf, st.lists(leaf, max_size=3),
                  st.dictionaries(odd_text, leaf, max_size=3))

SLOTS = [
    ("name",), ("budget", "seconds"), ("budget", "trials"), ("seed",),
    ("objectives", 0, "reference"), ("objectives", 0, "metric"), ("objectives", 1, "direction"),
    ("objectives", 1, "device"), ("constraints", 0, "max"), ("constraints", 0, "min"),
    ("constraints", 0, "metric"), ("search_space", "options", "path"),
    ("search_space", "options", "filter", "dataset"), ("search_space", "options", "params", 0),
    ("search_space", "options", "metrics"), ("search_space", "name"), ("strategy", "name"),
    ("strategy", "options", "population_size"), ("strategy", "options", "x"),
    ("max_concurrency",), ("stage1_fraction",), ("stages",), ("stage1_dims",),
    ("accuracy", "kappa"), ("accuracy", "mode"), ("accuracy", "predictor_options", "k"),
    ("finetune",), ("backend",), ("odd key \x00",),
]


def base_spec() -> dict:
    spec = table_spec(constraints=[{"metric": "acc", "max": 1.0}])
    spec["strategy"]["options"] = {}
    spec["accuracy"] = {"predictor_options": {}}
    return spec


def mutate(spec: dict, slot: tuple, new) -> dict:
    node = spec
    for key in slot[:-1]:
        node = node[key]
    node[slot[-1]] = new
    return spec


bodies = st.lists(st.tuples(st.sampled_from(SLOTS), value), min_size=1, max_size=3).map(
    lambda changes: _apply(changes))


def _apply(changes) -> dict:
    spec = base_spec()
    for slot, new in changes:
        spec = mutate(spec, slot, new)
    return spec


@pytest.fixture
def server(database_url, data_dir):
    os.mkfifo(data_dir / "fifo.csv")
    (data_dir / "sub").mkdir()
    (data_dir / "loop").symlink_to(data_dir / "loop")
    with live_server(Settings(database_url=database_url, max_trials=1000), workers=0) as url:
        with httpx.Client(base_url=url + "/api/v1", timeout=60) as client:
            yield client


def _count(client: httpx.Client) -> int:
    r = client.get("/studies", params={"limit": 1})
    assert r.status_code == 200, r.text
    return r.json()["count"]


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_no_body_gets_a_5xx_or_half_writes(server, body):
    before = _count(server)
    # NaN/Infinity literals and \\ud800 escapes, as Python's json (and careless clients) write
    r = server.post("/studies", content=json.dumps(body),
                    headers={"content-type": "application/json"})
    assert r.status_code < 500, (r.status_code, r.text, body)
    event(f"status {r.status_code}")
    detail = r.json()  # every answer, 422s included, is valid JSON
    if r.status_code == 201:
        assert _count(server) == before + 1
        back = server.get(f"/studies/{detail['id']}")
        assert back.status_code == 200 and back.json()["spec"] == detail["spec"]
    else:
        assert r.status_code in (401, 413, 422), r.text
        assert _count(server) == before, "a refused study left something behind"


def test_undecodable_bodies_are_4xx(server):
    for raw in (b"\xff\xfe{", b'{"name": "\xed\xa0\x80"}', b"[" * 100_000, b"1e999",
                b'{"budget": {"trials": 1' + b"0" * 5000 + b"}}"):
        r = server.post("/studies", content=raw, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (raw[:40], r.status_code, r.text[:200])
