from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from evaluators.profilers.onnxruntime_cpu import OnnxRuntimeCpuProfiler
from evaluators.profilers.reference import reference_input, reference_model
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


def test_default_methods() -> None:
    assert TorchCpuProfiler().settings.method == "reference"
    assert OnnxRuntimeCpuProfiler().settings.method == "min"
    # torch-cpu pairs single calls of the subnet and of the reference
    assert TorchCpuProfiler().settings.min_sample_ms == 0
    result = TorchCpuProfiler({"max_seconds": 0, "repeats": 3}).measure(small_cnn(), image())
    assert result.details["calls_per_sample"] == 1


@pytest.mark.parametrize("cls", [TorchCpuProfiler, OnnxRuntimeCpuProfiler])
def test_statistics_and_settings_are_recorded(cls) -> None:
    result = cls({**FAST, "repeats": 4, "batch": 2, "max_seconds": 0, "method": "reference"}
                 ).measure(small_cnn(), image())
    assert len(result.samples_ms) == 4
    d = result.details
    assert d["batch"] == 2 and d["threads"] == 1 and d["calls_per_sample"] >= 1
    assert d["min_ms"] <= d["median_ms"] <= d["max_ms"] and d["iqr_ms"] >= 0 and d["cv"] >= 0
    assert d["method"] == "reference" and result.latency_ms == d["median_ms"]
    assert d["samples"] == 4 and 0 < d["running_fraction"] <= 1.01
    assert d["raw"]["min_ms"] <= d["raw"]["median_ms"] and d["reference_nominal_ms"] > 0
    # normalised samples: the median ratio to the reference times its nominal latency
    assert result.latency_ms == pytest.approx(d["ratio_median"] * d["reference_nominal_ms"])


@pytest.mark.parametrize("cls", [TorchCpuProfiler, OnnxRuntimeCpuProfiler])
@pytest.mark.parametrize("method", ["reference", "min"])
def test_reference_and_min_sample_for_the_budget(cls, method) -> None:
    result = cls({**FAST, "method": method, "max_seconds": 0.2}).measure(small_cnn(), image())
    assert result.details["measuring_s"] >= 0.2 and len(result.samples_ms) >= 3
    assert result.details["method"] == method


@pytest.mark.parametrize("cls", [TorchCpuProfiler, OnnxRuntimeCpuProfiler])
def test_median_takes_exactly_repeats_raw_samples(cls) -> None:
    result = cls({**FAST, "method": "median", "max_seconds": 5}).measure(small_cnn(), image())
    assert len(result.samples_ms) == 3 and result.latency_ms == result.details["median_ms"]
    assert "raw" not in result.details and "reference_nominal_ms" not in result.details


@pytest.mark.parametrize("cls", [TorchCpuProfiler, OnnxRuntimeCpuProfiler])
def test_reference_is_calibrated_once_per_process_or_pinned(cls) -> None:
    ref = {**FAST, "method": "reference"}
    first = cls(ref).measure(small_cnn(), image()).details["reference_nominal_ms"]
    again = cls(ref).measure(small_cnn(8), image()).details["reference_nominal_ms"]
    assert first == again > 0
    pinned = cls({**ref, "reference_ms": 2.5}).measure(small_cnn(), image())
    assert pinned.details["reference_nominal_ms"] == 2.5
    assert pinned.latency_ms == pytest.approx(2.5 * pinned.details["ratio_median"])


def test_reference_model_is_fixed_and_leaves_the_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = reference_model(), reference_model()
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    with torch.inference_mode():
        assert torch.equal(a(reference_input()), b(reference_input()))


def test_reference_method_without_reference_samples_is_an_error() -> None:
    from evaluators.profilers.base import ProfilerError
    from evaluators.profilers.timing import TimedSettings, Timing, timed_result

    timing = Timing([1.0, 2.0], 1, "wall", 0.1, 1.0)
    with pytest.raises(ProfilerError, match="reference"):
        timed_result(timing, TimedSettings(), nominal_ms=1.0)


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
     ({"batch": -1}, "batch"), ({"method": "mean"}, "method"),
     ({"reference_ms": 0}, "reference_ms"),
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
