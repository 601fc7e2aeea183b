"""Command-line and client details: the server URL in connection errors, no httpx log lines,
the status table, the client's 401 naming PARETONAS_API_KEY, devices measured on a device the
server registered, partial archs, unknown options listing the allowed ones, plug-in help."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.interfaces.api.app import create_app
from service.interfaces.cli import main
from service.interfaces.client import Client, ClientError
from service.settings import Settings
from tests.conftest import table_spec
from tests.service.live import live_server
from tests.service.test_client_cli import cli
from tests.service.test_devices import tiny_space  # noqa: F401  (autouse: registers the space)


def test_status_table_and_quiet_http(server):
    with Client(server) as c:
        c.wait(c.submit(table_spec(budget={"trials": 6}))["id"], progress=False, poll_s=0.05)
    r = cli("status", url=server)
    assert r.returncode == 0 and "httpx" not in r.stderr and "HTTP Request" not in r.stderr
    head, row = r.stdout.splitlines()
    assert head.split() == ["id", "status", "trials", "hv", "(0-1)", "hv", "(own", "ref)",
                            "space", "name"]
    assert row.split()[:3] == ["1", "completed", "6/6"] and 0 < float(row.split()[3]) <= 1
    assert head.index("name") == row.index("table study")  # aligned columns
    r = cli("status", "1", url=server)
    assert json.loads(r.stdout)["hypervolume_normalised"] > 0
    r = cli("-v", "status", url=server)
    assert "HTTP Request" in r.stderr  # --verbose still shows them


def test_cannot_reach_names_the_url():
    r = cli("status", url="http://127.0.0.1:9")
    assert r.returncode == 2
    assert "cannot reach the server at http://127.0.0.1:9" in r.stderr
    assert "PARETONAS_URL" in r.stderr


def test_401_names_the_clients_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_API_KEYS", "k" * 32)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    try:
        client = Client("http://testserver")
        client._http = TestClient(app, base_url="http://testserver/api/v1")
        with pytest.raises(ClientError, match=r"\$PARETONAS_API_KEY \(or Client\(api_key=...\)\)"
                                              r"; it is not set"):
            client.cancel(1)
    finally:
        app.state.db.dispose()


def test_unknown_option_lists_the_allowed_ones(tmp_path, data_dir):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    try:
        r = TestClient(app).post("/api/v1/studies", json=table_spec(
            strategy={"name": "nsga2", "options": {"pop_size": 20}}))
        assert r.status_code == 422
        err = r.json()["detail"][0]
        assert err["loc"] == ["strategy", "options", "pop_size"]
        assert err["msg"].startswith("unknown option 'pop_size'; allowed: ")
        assert "population_size" in err["msg"]
    finally:
        app.state.db.dispose()


def test_partial_arch_takes_the_largest_values(capsys):
    rc = main(["devices", "measure", "tiny-cnn", "--device", "gap8", "--arch", '{"width": 4}'])
    assert rc == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["arch"] == {"resolution": 24, "width": 4}
    assert "1 dimension(s) not given take the largest arch's values: resolution=24" in \
        captured.err
    assert main(["devices", "measure", "tiny-cnn", "--arch", '{"depth": 2}']) == 2
    assert "unknown dimension(s) ['depth']; allowed: ['resolution', 'width']" in \
        capsys.readouterr().err


def test_measure_on_a_device_registered_on_the_server(tmp_path, capsys):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'live.db'}")
    with live_server(settings, workers=0) as url:
        with Client(url) as c:
            c.add_device("gap8-fast", "gap8", {"mode": "analytic", "cluster_mhz": 250})
        rc = main(["devices", "measure", "tiny-cnn", "--device", "gap8-fast", "--url", url,
                   "--arch", "smallest"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        assert json.loads(out.out)["kind"] == "gap8"
        assert main(["devices", "measure", "tiny-cnn", "--device", "nope", "--url", url]) == 2
        err = capsys.readouterr().err
        assert "neither here (cpu, gap8, ort-cpu) nor on the server (cpu, gap8, gap8-fast, " \
            "ort-cpu)" in err


def test_plugin_help_is_for_users(capsys):
    with pytest.raises(SystemExit):
        main(["data", "synth-voc", "--help"])
    text = capsys.readouterr().out
    assert "Write a small VOC-format dataset" in text
    assert "``" not in text and "Plug-in module" not in text
