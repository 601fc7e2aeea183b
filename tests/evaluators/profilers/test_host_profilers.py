from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from evaluators.profilers.onnxruntime_cpu import OnnxRuntimeCpuProfiler
from evaluators.profilers.torch_cpu import TorchCpuProfiler
from tests.contracts.profiler import ProfilerContract, image, small_cnn

FAST = {"warmup": 1, "repeats": 3, "min_sample_ms": 0.5, "max_seconds": 0.05}


class TestTorchCpu(ProfilerContract):
    @pytest.fixture
    def profiler(self) -> TorchCpuProfiler:
        return TorchCpuProfiler(FAST)


class TestOnnxRuntimeCpu(ProfilerContract):
    @pytest.fixture
    def profiler(self) -> OnnxRuntimeCpuProfiler:
        return OnnxRuntimeCpuProfiler(FAST)


@pytest.mark.parametrize("cls", [TorchCpuProfiler, OnnxRuntimeCpuProfiler])
def test_statistics_and_settings_are_recorded(cls) -> None:
    result = cls({**FAST, "repeats": 4, "batch": 2, "max_seconds": 0}).measure(
        small_cnn(), image())
    assert len(result.samples_ms) == 4
    d = result.details
    assert d["batch"] == 2 and d["threads"] == 1 and d["calls_per_sample"] >= 1
    assert d["min_ms"] <= d["median_ms"] <= d["max_ms"] and d["iqr_ms"] >= 0 and d["cv"] >= 0
    assert d["statistic"] == "min" and result.latency_ms == d["min_ms"]
    assert d["samples"] == len(result.samples_ms) and 0 < d["running_fraction"] <= 1.01


@pytest.mark.parametrize("cls", [TorchCpuProfiler, OnnxRuntimeCpuProfiler])
def test_min_samples_for_the_budget_median_takes_exactly_repeats(cls) -> None:
    by_min = cls({**FAST, "max_seconds": 0.2}).measure(small_cnn(), image())
    assert by_min.details["measuring_s"] >= 0.2 and len(by_min.samples_ms) >= 3
    by_median = cls({**FAST, "statistic": "median", "max_seconds": 5}).measure(
        small_cnn(), image())
    assert len(by_median.samples_ms) == 3
    assert by_median.latency_ms == by_median.details["median_ms"]


@pytest.mark.parametrize("threads, clock", [(1, "thread_cpu"), (2, "wall")])
def test_auto_clock_is_thread_cpu_only_single_threaded(threads, clock) -> None:
    result = TorchCpuProfiler({**FAST, "threads": threads}).measure(small_cnn(), image())
    assert result.details["clock"] == clock


def test_heap_is_kept_on_glibc_unless_disabled() -> None:
    import platform

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    kept = TorchCpuProfiler(FAST).measure(small_cnn(), image()).details["heap_kept"]
    assert kept is glibc
    off = TorchCpuProfiler({**FAST, "keep_heap": False}).measure(small_cnn(), image())
    assert off.details["heap_kept"] is False


def test_thread_count_is_pinned_and_restored() -> None:
    torch.set_num_threads(2)
    try:
        seen = []

        class Spy(torch.nn.Module):
            def forward(self, x):
                seen.append(torch.get_num_threads())
                return x * 2

        TorchCpuProfiler({**FAST, "threads": 1}).measure(Spy(), torch.ones(4))
        assert set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_runs_in_inference_mode() -> None:
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen.append(torch.is_inference_mode_enabled())
            return x + 1

    TorchCpuProfiler(FAST).measure(Spy(), torch.ones(3))
    assert seen and all(seen)


@pytest.mark.parametrize(
    "settings, field",
    [({"threads": 0}, "threads"), ({"repeats": 0}, "repeats"),
     ({"clock": "thread_cpu", "threads": 2}, "thread_cpu"), ({"clock": "sundial"}, "clock"),
     ({"batch": -1}, "batch"), ({"statistic": "mean"}, "statistic"),
     ({"max_seconds": -1}, "max_seconds"), ({"clock": "thread_cpu", "threads": 4}, "threads")],
)
def test_bad_settings_name_the_field(settings, field) -> None:
    with pytest.raises(ValidationError, match=field):
        TorchCpuProfiler(settings)


def test_unsupported_input_type_is_a_profiler_error() -> None:
    from evaluators.profilers.base import ProfilerError

    with pytest.raises(ProfilerError, match="unsupported example input"):
        TorchCpuProfiler(FAST).measure(small_cnn(), "not a tensor")


def test_ort_graph_optimisation_setting() -> None:
    p = OnnxRuntimeCpuProfiler({**FAST, "graph_optimization": "disable"})
    assert p.measure(small_cnn(), image()).latency_ms > 0
    with pytest.raises(ValidationError, match="graph_optimization"):
        OnnxRuntimeCpuProfiler({"graph_optimization": "max"})


def test_ort_spinning_setting() -> None:
    p = OnnxRuntimeCpuProfiler({**FAST, "threads": 2, "spinning": True})
    assert p.measure(small_cnn(), image()).latency_ms > 0
    with pytest.raises(ValidationError, match="spinning"):
        OnnxRuntimeCpuProfiler({"spinning": "sometimes"})


@pytest.mark.parametrize("cls", [TorchCpuProfiler, OnnxRuntimeCpuProfiler])
def test_cpu_pinning_is_applied_and_restored(cls) -> None:
    import os

    from evaluators.profilers.base import ProfilerError

    before = os.sched_getaffinity(0)
    cpu = min(before)
    result = cls({**FAST, "cpus": [cpu]}).measure(small_cnn(), image())
    assert result.details["cpus"] == [cpu] and os.sched_getaffinity(0) == before
    with pytest.raises(ProfilerError, match="not available to this process"):
        cls({**FAST, "cpus": [max(before) + 1000]}).measure(small_cnn(), image())
    assert os.sched_getaffinity(0) == before
