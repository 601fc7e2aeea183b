"""Third-party profilers register through the ``paretonas.profilers`` entry-point group."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest

import paretonas_core.registry as registry
from evaluators.profilers import PROFILERS
from evaluators.profilers.base import LatencyResult, Profiler, ProfilerError, ProfilerSettings
from evaluators.profilers.devices import DeviceCatalog, DeviceSpec
from evaluators.profilers.timing import call_model
from tests.contracts.profiler import ProfilerContract


class MacCountSettings(ProfilerSettings):
    macs_per_ms: float = 1e6


class MacCountProfiler(Profiler):
    """A plug-in 'device': latency = parameter-weighted op count / throughput (deterministic)."""

    name: ClassVar[str] = "mac-count"
    version: ClassVar[str] = "0.1"
    Settings: ClassVar[type[ProfilerSettings]] = MacCountSettings
    extra_metrics: ClassVar[dict[str, str]] = {"ops": "MAC"}

    def measure(self, model: Any, example_input: Any) -> LatencyResult:
        from torch.utils.flop_counter import FlopCounterMode

        training = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            with FlopCounterMode(display=False) as counter:
                call_model(model, example_input)
        except Exception as exc:
            raise ProfilerError(f"mac-count: {exc}") from exc
        finally:
            for m, t in training:
                m.training = t
        ops = counter.get_total_flops() / 2 + 1
        ms = ops / self.settings.macs_per_ms
        return LatencyResult(latency_ms=ms, samples_ms=[ms], metrics={"ops": ops})


@pytest.fixture
def plugin(monkeypatch):
    ep = EntryPoint(name="mac-count", group="paretonas.profilers",
                    value=f"{__name__}:MacCountProfiler")
    real = registry.entry_points

    def fake(*, group: str):
        return [ep] if group == "paretonas.profilers" else real(group=group)

    monkeypatch.setattr(registry, "entry_points", fake)
    PROFILERS._cache.pop("mac-count", None)
    yield
    PROFILERS._cache.pop("mac-count", None)


class TestPluginProfiler(ProfilerContract):
    deterministic = True

    @pytest.fixture
    def profiler(self, plugin) -> Profiler:
        return PROFILERS.get("mac-count")()


def test_plugin_kind_is_listed_and_usable_for_devices(plugin) -> None:
    assert "mac-count" in PROFILERS.names()
    device = DeviceSpec(name="npu", kind="mac-count", settings={"macs_per_ms": 5e5})
    catalog = DeviceCatalog()
    catalog.add(device.validated(source="api"), source="api")
    assert isinstance(catalog.profiler("npu"), MacCountProfiler)
