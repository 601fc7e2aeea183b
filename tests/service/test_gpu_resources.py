"""Ray trials that train/evaluate on CUDA or measure on a ``torch-cuda`` device ask Ray for a
GPU (``num_gpus``), so a cluster places them on GPU nodes; checked on a CPU-only machine (the
request is built by the driver, before anything runs)."""

from __future__ import annotations

import pytest

from evaluators.profilers.devices import DeviceCatalog, DeviceSpec
from service.engine.backends.ray_backend import RayOptions, check_schedulable, trial_resources
from service.engine.evaluation import needs_gpu
from service.engine.resolve import resolve_spec
from service.engine.spec import StudySpec
from tests.search_spaces.test_deeplabv3plus import TINY


def _study(compute: dict | None = None, *, latency_on: str | None = None):
    objectives = [{"metric": "macs", "direction": "minimize"},
                  {"metric": "params", "direction": "minimize"}]
    if latency_on:
        objectives[1] = {"metric": "latency_ms", "device": latency_on, "direction": "minimize"}
    raw = {"name": "g", "search_space": {"name": "deeplabv3plus", "options": TINY},
           "objectives": objectives, "budget": {"trials": 2}, "backend": "ray"}
    if compute is not None:
        raw["compute"] = compute
    catalog = DeviceCatalog()
    catalog.add(DeviceSpec(name="a100", kind="torch-cuda", settings={"batch": 8}).validated())
    return resolve_spec(StudySpec.model_validate(raw), devices=catalog)


@pytest.fixture(autouse=True)
def _driver_without_device_setting(monkeypatch):
    monkeypatch.delenv("PARETONAS_DEVICE", raising=False)


def test_cuda_studies_ask_for_one_gpu_per_trial():
    opts = RayOptions(cpus_per_trial=2)
    assert trial_resources(_study({"device": "cuda"}), opts) == {"cpu": 2, "gpu": 1.0}
    assert trial_resources(_study({"device": "cuda:1"}), opts) == {"cpu": 2, "gpu": 1.0}
    assert trial_resources(_study({"device": "cpu"}), opts) == {"cpu": 2}
    # auto: Ray hides GPUs from trials that did not ask for one, so auto trials run on CPUs
    assert trial_resources(_study(), opts) == {"cpu": 2}


def test_the_driver_workers_device_decides_for_auto_studies(monkeypatch):
    monkeypatch.setenv("PARETONAS_DEVICE", "cuda")
    assert needs_gpu(_study())
    assert not needs_gpu(_study({"device": "cpu"}))


def test_measuring_on_a_torch_cuda_device_asks_for_a_gpu():
    study = _study({"device": "cpu"}, latency_on="a100")
    assert trial_resources(study, RayOptions()) == {"cpu": 1.0, "gpu": 1.0}


def test_a_cluster_without_gpus_fails_the_study_at_once():
    ray = pytest.importorskip("ray")
    from service.engine.backends.ray_backend import UnschedulableError

    ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)
    try:
        check_schedulable({"cpu": 1.0})
        with pytest.raises(UnschedulableError, match=r"\['gpu'\]"):
            check_schedulable({"cpu": 1.0, "gpu": 1.0}, wait_s=0)
    finally:
        ray.shutdown()


def test_the_api_checks_the_device_name_but_not_this_servers_gpus(tmp_path, data_dir):
    from fastapi.testclient import TestClient

    from service.interfaces.api.app import create_app
    from service.settings import Settings
    from tests.conftest import table_spec

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}"))
    try:
        client = TestClient(app)
        r = client.post("/api/v1/studies", json=table_spec(compute={"device": "tpu"}))
        assert r.status_code == 422
        (error,) = r.json()["detail"]
        assert error["loc"][-2:] == ["compute", "device"]
        assert "allowed: auto, cpu, cuda, cuda:N" in error["msg"]
        # a GPU study is queued even by a server without one: its workers may have GPUs
        r = client.post("/api/v1/studies", json=table_spec(compute={"device": "cuda:1",
                                                                    "amp": False}))
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["compute"] == {"device": "cuda:1", "amp": False, "prefetch": 0}
    finally:
        app.state.db.dispose()
