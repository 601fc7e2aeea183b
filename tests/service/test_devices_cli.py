"""``paretonas devices ...`` and the client's device calls."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.interfaces.api.app import create_app
from service.interfaces.cli import main
from service.interfaces.client import Client, ClientError
from service.settings import Settings
from tests.service.test_devices import tiny_space  # noqa: F401  (autouse: registers the space)


def test_measure_a_subnet_on_a_device(capsys):
    rc = main(["devices", "measure", "tiny-cnn", "--device", "gap8", "--arch", "smallest"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == {"resolution": 16, "width": 4} and out["kind"] == "gap8"
    assert out["metrics"]["latency_ms"] > 0 and out["metrics"]["fits_l2"] == 1.0
    assert "layers" not in out["details"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--device", "tpu"], "unknown device 'tpu'; known devices: cpu, gap8, ort-cpu"),
        (["--arch", '{"width": 5, "resolution": 16}'], "width=5 is outside the space"),
        (["--options", "[1]"], "--options must be a JSON object"),
    ],
)
def test_measure_errors_are_one_line(capsys, argv, message):
    assert main(["devices", "measure", "tiny-cnn", *argv]) == 2
    assert message in capsys.readouterr().err


def test_add_setting_syntax(capsys):
    assert main(["devices", "add", "x", "torch-cpu", "--set", "threads"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


def test_client_device_calls(tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    try:
        client = Client("http://testserver")
        client._http = TestClient(app, base_url="http://testserver/api/v1")  # in-process server
        added = client.add_device("cpu2", "torch-cpu", {"threads": 2})
        assert added["settings"]["threads"] == 2
        assert "cpu2" in {d["name"] for d in client.devices()}
        assert {p["name"] for p in client.profilers()} >= {"gap8", "torch-cpu"}
        with pytest.raises(ClientError, match="409"):
            client.add_device("cpu2", "torch-cpu")
    finally:
        app.state.db.dispose()


def test_run_in_process_with_a_config_file_device(tmp_path, monkeypatch, capsys):
    import sys

    from service.settings import get_settings
    from tests.service.test_devices import FAKE, spec

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"""
devices:
  - name: sim
    kind: gap8
    settings: {{mode: gvsoc, command: ["{sys.executable}", "{FAKE}", "{{onnx}}"]}}
""")
    monkeypatch.setenv("PARETONAS_CONFIG_FILE", str(cfg))
    get_settings.cache_clear()
    try:
        spec_file = tmp_path / "spec.json"
        spec_file.write_text(json.dumps(spec(devices=("sim", "gap8"), trials=3)))
        out = tmp_path / "result.json"
        assert main(["run", str(spec_file), "-o", str(out), "-q"]) == 0
        trials = json.loads(out.read_text())["trials"]
        assert all(t["state"] == "complete" for t in trials)
        assert all(t["values"]["latency_ms@sim"] > 0 for t in trials)
        cfg.write_text("devices: [{name: x, kind: tpu}]")
        assert main(["run", str(spec_file), "-q"]) == 2
        assert "unknown profiler 'tpu'" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
