"""``torch-cuda``: latency of a subnet in PyTorch on an NVIDIA GPU, timed with CUDA events.

A GPU runs asynchronously: a host clock around a call measures the launch, not the kernels. So
each sample records a CUDA event before and after ``inner`` back-to-back calls on the current
stream and waits for the second; the sample is the events' elapsed time divided by ``inner``
(``inner`` chosen once so a sample lasts at least ``min_sample_ms``: one short kernel is
below the events' ~0.5 us resolution). Before timing, ``warmup`` calls let cuDNN pick its
algorithms (``cudnn_benchmark``), the caching allocator reach its steady state and, with
``compile``, ``torch.compile`` finish compiling; the device is synchronised after them.

GPU clocks move with temperature and power (boost); setting them (``nvidia-smi -lgc``) needs
root, so the result records the SM and memory clocks read through NVML before and after the
samples (and the driver, GPU name and CUDA version) instead: two measurements at different
clocks can be told apart. ``bench/gpu.py`` gives the CV over 10 measurements.

The model is copied before it is moved to the GPU: the caller's CPU model (other devices
measure it too) is left as it was.
"""

from __future__ import annotations

import copy
import math
import statistics
from typing import Any, ClassVar, Literal

from pydantic import Field

from evaluators.profilers.base import LatencyResult, Profiler, ProfilerError, ProfilerSettings
from evaluators.profilers.timing import call_model, repeat_batch, with_input_shape

#: what to use where there is no GPU (named in the error)
HOST_KINDS = "torch-cpu, onnxruntime-cpu, torch-cpu-table, gap8"


class TorchCudaSettings(ProfilerSettings):
    gpu: int = Field(default=0, ge=0, le=63, description="CUDA device index")
    batch: int = Field(default=1, ge=1, le=4096, description="batch size (input repeated)")
    warmup: int = Field(default=20, ge=1, le=10_000, description="untimed calls first")
    repeats: int = Field(default=50, ge=3, le=100_000, description="timed samples")
    min_sample_ms: float = Field(
        default=2.0, ge=0, le=10_000,
        description="each sample runs the model back to back at least this long (events "
                    "resolve ~0.5 us; launch gaps average out)",
    )
    method: Literal["median", "min"] = Field(default="median", description="sample statistic")
    precision: Literal["float32", "float16", "bfloat16"] = Field(
        default="float32", description="float32, or autocast to float16/bfloat16"
    )
    compile: Literal["none", "default", "reduce-overhead", "max-autotune"] = Field(
        default="none", description="torch.compile mode ('none': eager)"
    )
    cudnn_benchmark: bool = Field(
        default=True, description="let cuDNN time its algorithms during warm-up"
    )
    input_shape: list[int] | None = Field(
        default=None, min_length=1, max_length=8,
        description="measure on an input of this shape instead of the arch's example input",
    )
    expect_gpu: str | None = Field(
        default=None, max_length=200,
        description="measure only on a GPU of this name (torch.cuda.get_device_name): a "
                    "worker with another GPU fails the trial instead of mixing its latencies "
                    "in, and cached results of different GPUs stay apart",
    )


class TorchCudaProfiler(Profiler):
    """CUDA-event timing of a copy of the model on one GPU (see module docstring)."""

    name: ClassVar[str] = "torch-cuda"
    version: ClassVar[str] = "1"
    Settings: ClassVar[type[ProfilerSettings]] = TorchCudaSettings

    def measure(self, model: Any, example_input: Any) -> LatencyResult:
        import torch

        from paretonas_core.compute import gpu_info

        s: TorchCudaSettings = self.settings  # type: ignore[assignment]
        device = check_gpu(s.gpu, expect=s.expect_gpu)
        inputs = _to(repeat_batch(with_input_shape(example_input, s.input_shape), s.batch),
                     device)
        before = gpu_info(device)
        old_benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = s.cudnn_benchmark
        dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(s.precision)
        net = copy.deepcopy(model).to(device).eval()  # normal (not inference) tensors
        try:
            with torch.cuda.device(device), torch.inference_mode(), torch.autocast(
                "cuda", dtype=dtype or torch.float16, enabled=dtype is not None
            ):
                if s.compile != "none":
                    net = torch.compile(net, mode=None if s.compile == "default" else s.compile)
                try:
                    for _ in range(s.warmup):  # the first call surfaces shape errors
                        call_model(net, inputs)
                    torch.cuda.synchronize(device)
                    inner = _calls_per_sample(net, inputs, s.min_sample_ms)
                    samples = [_sample(net, inputs, inner) for _ in range(s.repeats)]
                except Exception as exc:  # a model that cannot run on this input fails the trial
                    raise ProfilerError(f"torch-cuda: the model failed on its input: {exc}"
                                        ) from exc
        finally:
            del net
            torch.backends.cudnn.benchmark = old_benchmark
            torch.cuda.empty_cache()
        after = gpu_info(device)
        latency = min(samples) if s.method == "min" else statistics.median(samples)
        mean = statistics.fmean(samples)
        return LatencyResult(latency, samples, details={
            "method": s.method, "timer": "cuda_event", "inner_calls": inner,
            "warmup": s.warmup, "batch": s.batch, "precision": s.precision,
            "compile": s.compile, "cv": statistics.pstdev(samples) / mean if mean else 0.0,
            "torch": str(torch.__version__), **before,
            "clocks_after": {k: after[k] for k in ("sm_clock_mhz", "memory_clock_mhz")
                             if k in after},
        })


def check_gpu(index: int, *, expect: str | None = None) -> str:
    """``cuda:index``, or ProfilerError saying why not and what measures without a GPU."""
    import torch

    if not torch.cuda.is_available():
        raise ProfilerError(
            "torch-cuda: CUDA is not available on this machine (torch.cuda.is_available() is "
            f"False; torch {torch.__version__}); measure on a worker with an NVIDIA GPU, or use "
            f"a device of kind {HOST_KINDS}"
        )
    count = torch.cuda.device_count()
    if index >= count:
        raise ProfilerError(f"torch-cuda: gpu {index} does not exist; this machine has "
                            f"{count} GPU(s): 0..{count - 1}")
    name = torch.cuda.get_device_name(index)
    if expect is not None and name != expect:
        raise ProfilerError(f"torch-cuda: this device measures on a {expect!r}, but gpu "
                            f"{index} of this machine is a {name!r}")
    return f"cuda:{index}"


def _to(value: Any, device: str) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to(v, device) for v in value)
    return value


def _sample(net: Any, inputs: Any, inner: int) -> float:
    """Milliseconds per call over ``inner`` back-to-back calls, between two CUDA events."""
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(inner):
        call_model(net, inputs)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / inner


def _calls_per_sample(net: Any, inputs: Any, min_sample_ms: float) -> int:
    """Calls per sample so that one sample lasts at least ``min_sample_ms``."""
    one = min(_sample(net, inputs, 1) for _ in range(3))
    if min_sample_ms <= 0 or one <= 0:
        return 1
    return max(1, min(10_000, math.ceil(min_sample_ms / one)))
