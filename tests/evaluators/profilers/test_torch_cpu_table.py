from __future__ import annotations

import pytest
import torch

from evaluators.profilers.devices import DeviceError, DeviceSpec
from evaluators.profilers.latency_table import LatencyTable
from evaluators.profilers.torch_cpu_table import TorchCpuTableProfiler
from tests.contracts.profiler import ProfilerContract, image, small_cnn

FAST = {"warmup": 1, "repeats": 3, "min_sample_ms": 0.5, "max_seconds": 0.05,
        "reference_subnets": 2}


@pytest.fixture(autouse=True)
def _fresh_tables():
    TorchCpuTableProfiler._states.clear()
    yield
    TorchCpuTableProfiler._states.clear()


class TestTorchCpuTable(ProfilerContract):
    @pytest.fixture
    def profiler(self) -> TorchCpuTableProfiler:
        return TorchCpuTableProfiler(FAST)


def test_references_are_measured_then_the_table_predicts(tmp_path) -> None:
    torch.set_num_threads(1)
    path = tmp_path / "table.json"
    p = TorchCpuTableProfiler({**FAST, "table_path": str(path)})
    sources = [p.measure(small_cnn(w), image()).details["source"] for w in (4, 8, 12)]
    assert sources == ["measured (table reference)"] * 2 + ["table"]
    again = p.measure(small_cnn(8), image())
    assert again.details["source"] == "table" and again.details["new_entries"] == 0
    saved = LatencyTable.load(path)
    assert saved.entries and saved.per_call_ms == again.details["per_call_ms"]


def test_table_path_is_config_only() -> None:
    spec = DeviceSpec(name="t", kind="torch-cpu-table", settings={"table_path": "/etc/x"})
    with pytest.raises(DeviceError, match="config file"):
        spec.validated(source="api")
    assert DeviceSpec(name="t", kind="torch-cpu-table").validated(source="api")
