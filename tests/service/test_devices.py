"""Devices over the API, config-file devices, device metrics in a study, and the persisted
measurement cache, on a real database with real (tiny) torch models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from evaluators.profilers.devices import DeviceError
from search_spaces import SPACES
from search_spaces.base import Dim, SearchSpace
from service.interfaces.api.app import create_app
from service.interfaces.worker import Worker
from service.persistence.measurement_cache import DbMeasurementCache
from service.persistence.models import Measurement
from service.settings import Settings
from tests.contracts.profiler import small_cnn

FAKE = Path(__file__).parents[1] / "evaluators" / "profilers" / "fixtures" / "fake_gvsoc.py"


class TinyCnnSpace(SearchSpace):
    """Two dims of a small real CNN; 'acc' grows with size (a stand-in accuracy)."""

    name = "tiny-cnn"

    def dimensions(self):
        return {"width": Dim((4, 8, 16)), "resolution": Dim((16, 24))}

    def metrics(self):
        from search_spaces.base import MetricInfo

        return {"acc": MetricInfo("maximize")}

    def evaluate(self, arch, metrics, *, context=None):
        return {"acc": arch["width"] * arch["resolution"] / 384}

    def extract(self, arch):
        torch.manual_seed(0)
        return small_cnn(int(arch["width"]))

    def example_input(self, arch):
        r = int(arch["resolution"])
        return torch.zeros(1, 3, r, r)

    def calibration_inputs(self, arch, n):
        r = int(arch["resolution"])
        gen = torch.Generator().manual_seed(1)
        return [torch.rand(1, 3, r, r, generator=gen) for _ in range(n)]

    def cost(self, arch):
        return {"macs": 0.0, "params": 0.0, "params_bytes": 0.0, "peak_activation_bytes": 0.0}


@pytest.fixture(autouse=True)
def tiny_space():
    SPACES.register("tiny-cnn", TinyCnnSpace)
    yield
    SPACES._targets.pop("tiny-cnn", None)
    SPACES._cache.pop("tiny-cnn", None)


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "paretonas.yaml"
    path.write_text(f"""
devices:
  - name: gap8-sim
    kind: gap8
    settings:
      mode: gvsoc
      command: ["{sys.executable}", "{FAKE}", "{{onnx}}"]
      timeout_s: 120
  - name: gap8-int8
    kind: gap8
    settings:
      mode: gvsoc
      onnx_format: int8_qdq
      calibration_samples: 3
      command: ["{sys.executable}", "{FAKE}", "{{onnx}}", "--require-int8"]
""")
    return path


@pytest.fixture
def app(database_url, config_file):
    app = create_app(Settings(database_url=database_url, config_file=config_file))
    yield app
    app.state.db.dispose()


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


def spec(devices=("gap8",), trials=6, constraints=()) -> dict:
    objectives = [{"metric": "acc", "direction": "maximize"}]
    objectives += [{"metric": "latency_ms", "device": d, "direction": "minimize"}
                   for d in devices]
    return {
        "name": "device study", "search_space": {"name": "tiny-cnn"},
        "objectives": objectives, "constraints": list(constraints),
        "strategy": {"name": "random"}, "budget": {"trials": trials}, "seed": 0,
    }


def run_queue(app) -> None:
    worker = Worker(app.state.db, app.state.settings, worker_id="w")
    while worker.run_once() is not None:
        pass


def test_lists_default_and_config_devices_without_commands(client):
    devices = {d["name"]: d for d in client.get("/api/v1/devices").json()["data"]}
    assert {"cpu", "ort-cpu", "gap8", "gap8-sim"} <= set(devices)
    sim = devices["gap8-sim"]
    assert sim["source"] == "config" and sim["settings"]["mode"] == "gvsoc"
    assert "command" not in sim["settings"]  # the command line stays on the server
    assert {m["name"] for m in sim["metrics"]} >= {"latency_ms", "fits_l2", "params_bytes"}
    assert client.get("/api/v1/devices/cpu").json()["kind"] == "torch-cpu"
    r = client.get("/api/v1/devices/tpu")
    assert r.status_code == 404 and "gap8-sim" in r.json()["detail"]


def test_profiler_kinds_hide_config_only_settings(client):
    kinds = {p["name"]: p for p in client.get("/api/v1/profilers").json()["data"]}
    assert set(kinds) >= {"torch-cpu", "onnxruntime-cpu", "gap8"}
    assert "command" not in kinds["gap8"]["settings_schema"]["properties"]
    assert kinds["gap8"]["config_only_settings"] == ["command", "timeout_s"]
    assert "threads" in kinds["torch-cpu"]["settings_schema"]["properties"]


def test_register_a_device_and_use_it(app, client):
    r = client.post("/api/v1/devices", json={"name": "gap8-90mhz", "kind": "gap8",
                                             "settings": {"cluster_mhz": 90}})
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "api" and r.json()["settings"]["cluster_mhz"] == 90
    assert "gap8-90mhz" in {d["name"] for d in client.get("/api/v1/devices").json()["data"]}
    r = client.post("/api/v1/studies", json=spec(devices=("gap8", "gap8-90mhz")))
    assert r.status_code == 201, r.text
    run_queue(app)
    trials = client.get(f"/api/v1/studies/{r.json()['id']}/trials").json()["data"]
    done = [t for t in trials if t["state"] == "complete" and "duplicate_of" not in t["info"]]
    assert done
    for t in done:  # same cycles, half the clock: twice the latency
        v = t["values"]
        assert v["latency_ms@gap8-90mhz"] == pytest.approx(v["latency_ms@gap8"] * 175 / 90)
    # the Pareto CSV carries each GAP8 device's out-of-sample band next to its latency
    import csv
    import io

    from evaluators.profilers.gap8.model import OUT_OF_SAMPLE

    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/api/v1/studies/{r.json()['id']}/pareto.csv").text)))
    assert rows and all(float(row["latency_err_pct@gap8"]) == OUT_OF_SAMPLE["loo_mape_pct"]
                        for row in rows)
    assert "latency_err_pct@gap8-90mhz" in rows[0]


def test_int8_device_calibrates_on_the_space_inputs(app, client):
    r = client.post("/api/v1/studies", json=spec(devices=("gap8-int8",), trials=2))
    assert r.status_code == 201, r.text
    run_queue(app)
    trials = client.get(f"/api/v1/studies/{r.json()['id']}/trials").json()["data"]
    done = [t for t in trials if t["state"] == "complete" and "duplicate_of" not in t["info"]]
    assert done, [t.get("error") for t in trials]
    details = done[0]["info"]["devices"]["gap8-int8"]["details"]
    assert details["onnx_format"] == "int8_qdq" and details["calibration_source"] == "given"
    assert details["calibration_inputs"] == 3


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"name": "sim", "kind": "gap8", "settings": {"mode": "gvsoc", "command": ["sh"]}},
         422, "only be set in the server config file"),
        ({"name": "sim", "kind": "gap8", "settings": {"mode": "gvsoc"}}, 422, "needs a 'command'"),
        ({"name": "x", "kind": "tpu"}, 422, "allowed: gap8, onnxruntime-cpu, torch-cpu"),
        ({"name": "x", "kind": "torch-cpu", "settings": {"threads": 0}}, 422, "threads"),
        ({"name": "x", "kind": "torch-cpu", "settings": {"shell": "ls"}}, 422, "shell"),
        ({"name": "cpu", "kind": "torch-cpu"}, 409, "already exists (default)"),
        ({"name": "gap8-sim", "kind": "gap8"}, 409, "already exists (config)"),
        ({"name": "a b", "kind": "gap8"}, 422, "name"),
    ],
)
def test_bad_devices_are_refused(client, body, status, message):
    r = client.post("/api/v1/devices", json=body)
    assert r.status_code == status, r.text
    assert message in r.text


def test_api_device_names_are_unique(client):
    body = {"name": "cpu4", "kind": "torch-cpu", "settings": {"threads": 1}}
    assert client.post("/api/v1/devices", json=body).status_code == 201
    assert client.post("/api/v1/devices", json=body).status_code == 409


def test_study_on_unknown_device_lists_devices(client):
    r = client.post("/api/v1/studies", json=spec(devices=("tpu",)))
    assert r.status_code == 422 and "gap8-sim" in r.text


def test_measurements_are_cached_across_studies(app, client):
    body = spec(devices=("gap8-sim",), trials=5)
    first = client.post("/api/v1/studies", json=body).json()["id"]
    run_queue(app)
    with app.state.db.session() as s:
        rows = s.query(Measurement).all()
    unique = {r.arch_key for r in rows}
    assert rows and len(rows) == len(unique) and {r.device for r in rows} == {"gap8-sim"}
    second = client.post("/api/v1/studies", json=body).json()["id"]  # same seed: same archs
    run_queue(app)
    t1 = client.get(f"/api/v1/studies/{first}/trials").json()["data"]
    t2 = client.get(f"/api/v1/studies/{second}/trials").json()["data"]
    fresh = [t for t in t2 if "duplicate_of" not in t["info"]]
    assert fresh and all(t["info"]["sources"]["latency_ms@gap8-sim"] == "cached" for t in fresh)
    assert [t["values"] for t in t1] == [t["values"] for t in t2]
    assert fresh[0]["info"]["devices"]["gap8-sim"]["details"]["mode"] == "gvsoc"
    with app.state.db.session() as s:
        assert s.query(Measurement).count() == len(rows)  # nothing measured twice


def test_memory_metrics_as_objectives_and_constraints(app, client):
    body = spec(devices=(), trials=6, constraints=[
        {"metric": "peak_activation_bytes", "device": "gap8", "max": 4000}])
    body["objectives"].append({"metric": "params_bytes", "device": "gap8",
                               "direction": "minimize"})
    r = client.post("/api/v1/studies", json=body)
    assert r.status_code == 201, r.text
    run_queue(app)
    trials = client.get(f"/api/v1/studies/{r.json()['id']}/trials").json()["data"]
    done = [t for t in trials if t["state"] == "complete"]
    assert done and all(t["values"]["params_bytes@gap8"] > 0 for t in done)
    assert all(t["values"]["peak_activation_bytes@gap8"] <= 4000
               for t in trials if t["on_front"])
    r = client.post("/api/v1/studies", json={**body, "objectives": [
        {"metric": "acc", "direction": "maximize"},
        {"metric": "watts", "device": "gap8", "direction": "minimize"}]})
    assert r.status_code == 422 and "fits_l2" in r.text


def test_gvsoc_failure_fails_the_trial_with_the_simulator_output(tmp_path, database_url):
    cfg = tmp_path / "crash.yaml"
    cfg.write_text(f"""
devices:
  - name: sim
    kind: gap8
    settings: {{mode: gvsoc, command: ["{sys.executable}", "{FAKE}", "{{onnx}}", "--mode",
               "crash"]}}
""")
    app = create_app(Settings(database_url=database_url, config_file=cfg))
    try:
        client = TestClient(app)
        sid = client.post("/api/v1/studies", json=spec(devices=("sim",), trials=2)).json()["id"]
        run_queue(app)
        trials = client.get(f"/api/v1/studies/{sid}/trials").json()["data"]
        assert trials and all(t["state"] == "failed" for t in trials)
        assert "exited with status 3" in trials[0]["error"]
        assert "segmentation fault" in trials[0]["error"]
    finally:
        app.state.db.dispose()


def test_a_broken_config_file_stops_the_app(tmp_path, database_url):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("devices: [{name: x, kind: tpu}]")
    with pytest.raises(DeviceError, match="devices\\[0\\]: unknown profiler 'tpu'"):
        create_app(Settings(database_url=database_url, config_file=cfg))


def test_cache_unit(database_url):
    from service.persistence.db import Database

    db = Database(database_url)
    try:
        cache = DbMeasurementCache(db)
        key = {"arch_key": "a" * 64, "space_key": "s", "device": "cpu", "profiler": "torch-cpu",
               "profiler_version": "1", "settings_hash": "h"}
        assert cache.get(key) is None
        cache.put(key, {"metrics": {"latency_ms": 1.5}})
        cache.put(key, {"metrics": {"latency_ms": 9.9}})  # a racing worker: first one kept
        assert cache.get(key) == {"metrics": {"latency_ms": 1.5}}
        assert cache.get({**key, "profiler_version": "2"}) is None
        assert cache.count() == 1
        with pytest.raises(ValueError, match="lacks \\['device'\\]"):
            cache.get({**key, "device": ""})
    finally:
        db.dispose()
