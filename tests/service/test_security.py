"""API keys, body limits, the listen-address guard, data-path confinement, no command lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from service.interfaces.api.app import create_app
from service.interfaces.api.security import check_listen_address, is_loopback, key_matches
from service.settings import Settings
from tests.conftest import table_spec

KEY = "k3y-0123456789abcdef"


@pytest.fixture
def make_client(tmp_path, data_dir):
    apps = []

    def make(**settings) -> TestClient:
        app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'sec.db'}", **settings))
        apps.append(app)
        return TestClient(app)

    yield make
    for app in apps:
        app.state.db.dispose()


def test_writes_need_a_valid_bearer_key_when_keys_are_configured(make_client):
    client = make_client(api_keys=[KEY, "another-key-0000000"])
    r = client.post("/api/v1/studies", json=table_spec())
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    for header in (f"Bearer {KEY}x", f"Basic {KEY}", KEY, "Bearer "):
        r = client.post("/api/v1/studies", json=table_spec(), headers={"Authorization": header})
        assert r.status_code == 401, header
    r = client.post("/api/v1/studies", json=table_spec(),
                    headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 201, r.text
    study_id = r.json()["id"]
    # every write needs it, not only submission
    assert client.post(f"/api/v1/studies/{study_id}/cancel").status_code == 401
    assert client.post("/api/v1/devices", json={"name": "x", "kind": "gap8"}).status_code == 401
    r = client.post(f"/api/v1/studies/{study_id}/cancel",
                    headers={"Authorization": f"bearer {KEY}"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # reads stay open (viewer, dashboards)
    assert client.get(f"/api/v1/studies/{study_id}").status_code == 200
    assert client.get("/api/v1/health").status_code == 200


def test_the_openapi_schema_declares_the_bearer_scheme_on_writes(make_client):
    schema = make_client(api_keys=[KEY]).get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    submit = schema["paths"]["/api/v1/studies"]
    assert submit["post"]["security"] == [{"bearer": []}]
    assert {"401", "413"} <= set(submit["post"]["responses"])
    assert "security" not in submit["get"]
    open_schema = make_client().get("/openapi.json").json()
    assert "security" not in open_schema["paths"]["/api/v1/studies"]["post"]


def test_without_keys_writes_are_open(make_client):
    assert make_client().post("/api/v1/studies", json=table_spec()).status_code == 201


def test_keys_from_the_environment(monkeypatch):
    monkeypatch.setenv("PARETONAS_API_KEYS", f" {KEY} , second-key-123456 ,")
    assert Settings().api_keys == [KEY, "second-key-123456"]
    monkeypatch.setenv("PARETONAS_API_KEYS", f'["{KEY}"]')
    assert Settings().api_keys == [KEY]
    assert key_matches(KEY, [KEY]) and not key_matches(KEY[:-1], [KEY])


def test_bodies_over_the_limit_are_refused_before_they_are_read(make_client):
    client = make_client(max_body_bytes=2048)
    big = table_spec(name="x" * 150, constraints=[{"metric": "acc", "min": 0.0}] * 16)
    big["search_space"]["options"]["filter"] = {"dataset": "a" * 4000}
    r = client.post("/api/v1/studies", json=big)
    assert r.status_code == 413 and "2048" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/api/v1/studies", content=chunks(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.post("/api/v1/studies", json=table_spec()).status_code == 201


def test_budgets_over_the_server_limits_are_422(make_client):
    client = make_client(max_trials=50, max_seconds=60)
    r = client.post("/api/v1/studies", json=table_spec(budget={"trials": 51}))
    assert r.status_code == 422 and "50" in r.text
    r = client.post("/api/v1/studies", json=table_spec(budget={"trials": 5, "seconds": 61}))
    assert r.status_code == 422 and "60" in r.text


@pytest.mark.parametrize("path", ["../outside.csv", "/etc/passwd", "escape.csv", "sub/../../x"])
def test_data_paths_cannot_leave_the_data_roots(make_client, data_dir, path):
    outside = data_dir.parent / "outside.csv"
    outside.write_text((data_dir / "t.csv").read_text())
    os.symlink(outside, data_dir / "escape.csv")  # a symlink inside pointing outside
    spec = table_spec()
    spec["search_space"]["options"]["path"] = path
    r = make_client().post("/api/v1/studies", json=spec)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"][0] == "search_space" and "path" in detail["msg"]
    assert "outside the allowed data directories" in detail["msg"]


def test_requests_cannot_set_profiler_command_lines(make_client):
    r = make_client().post("/api/v1/devices", json={
        "name": "sim", "kind": "gap8",
        "settings": {"mode": "gvsoc", "command": ["sh", "-c", "id"]}})
    assert r.status_code == 422 and "config file" in r.text


def test_listen_guard():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    open_settings = Settings()
    check_listen_address("127.0.0.1", open_settings)
    with pytest.raises(ValueError, match="PARETONAS_API_KEYS"):
        check_listen_address("0.0.0.0", open_settings)
    check_listen_address("0.0.0.0", open_settings, insecure=True)
    check_listen_address("0.0.0.0", Settings(allow_insecure=True))
    check_listen_address("0.0.0.0", Settings(api_keys=[KEY]))


def test_serve_refuses_a_public_host_without_keys(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARETONAS_")}
    env["PARETONAS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    r = subprocess.run([sys.executable, "-m", "service.interfaces.cli",
                        "serve", "--host", "0.0.0.0",
                        "--workers", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "without API keys" in r.stderr
    assert "Traceback" not in r.stderr
