"""``torch-cpu``: latency of a subnet in eager PyTorch on the host CPU (see ``timing.py`` for
the clock and method)."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field

from evaluators.profilers.base import LatencyResult, Profiler, ProfilerError, ProfilerSettings
from evaluators.profilers.reference import nominal_for, reference_input, reference_model
from evaluators.profilers.timing import (
    TimedSettings,
    call_model,
    repeat_batch,
    time_samples,
    timed_result,
    with_input_shape,
)

#: why torch-cpu times single calls by default
SINGLE_CALLS = (
    "each sample loops the model at least this long; 0 (torch-cpu's default): one call per "
    "sample, paired with one call of the reference, the closest pairing in time (CV 2.3% "
    "against 5.4% with 1 ms samples, 10 runs under two busy loops)"
)


class TorchCpuSettings(TimedSettings):
    """``TimedSettings`` plus how the process's heap behaves while measuring."""

    min_sample_ms: float = Field(default=0.0, ge=0, le=10_000, description=SINGLE_CALLS)

    keep_heap: bool = Field(
        default=True,
        description="glibc: keep freed memory in the process instead of returning it to the OS",
    )


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_heap_kept = False


def keep_heap() -> bool:
    """Stop glibc from handing freed activation buffers back to the OS (once per process).

    By default every inference mmaps/trims its large tensors afresh: ~100 page faults per call
    on the benchmark subnet, ~5% of its time spent in the kernel, a cost that swings with the
    host's load. With the thresholds raised the buffers are reused (0.2 faults per call). The
    process keeps its peak heap, which a measuring worker reaches anyway. False where the C
    library is not glibc.
    """
    global _heap_kept
    if _heap_kept:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    big = 1 << 30
    _heap_kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, big)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, big))
    return _heap_kept


@contextlib.contextmanager
def measuring_state(model: Any, threads: int) -> Iterator[None]:
    """Eval mode, inference mode, pinned thread count and no GC pauses; all restored after."""
    import torch

    modes = [(m, m.training) for m in model.modules()] if hasattr(model, "modules") else []
    old_threads = torch.get_num_threads()
    gc_was_enabled = gc.isenabled()
    try:
        if hasattr(model, "eval"):
            model.eval()
        torch.set_num_threads(threads)
        gc.collect()
        gc.disable()
        with torch.inference_mode():
            yield
    finally:
        if gc_was_enabled:
            gc.enable()
        torch.set_num_threads(old_threads)
        for module, training in modes:
            module.training = training


class TorchCpuProfiler(Profiler):
    """Eager mode, pinned threads, timed samples summarised by ``method`` (``timing.py``)."""

    name: ClassVar[str] = "torch-cpu"
    version: ClassVar[str] = "2"
    Settings: ClassVar[type[ProfilerSettings]] = TorchCpuSettings

    def measure(self, model: Any, example_input: Any) -> LatencyResult:
        s: TorchCpuSettings = self.settings  # type: ignore[assignment]
        inputs = repeat_batch(with_input_shape(example_input, s.input_shape), s.batch)
        heap_kept = keep_heap() if s.keep_heap else False
        with measuring_state(model, s.threads):
            try:
                call_model(model, inputs)  # a first call surfaces shape errors before timing

                def run() -> Any:
                    return call_model(model, inputs)

                reference, nominal = reference_and_nominal(s)
                timing = time_samples(run, s, reference=reference)
            except ProfilerError:
                raise
            except Exception as exc:  # a model that cannot run on this input fails the trial
                raise ProfilerError(f"torch-cpu: the model failed on its input: {exc}") from exc
        return timed_result(timing, s, nominal_ms=nominal, heap_kept=heap_kept,
                            torch=_torch_version())


_reference: tuple[Any, Any] | None = None


def reference_and_nominal(s: TimedSettings) -> tuple[Any, float | None]:
    """For method ``reference``: a call of the reference network (built once per process; run
    in the caller's mode and threads) and its nominal latency; else ``(None, None)``."""
    global _reference
    if s.method != "reference":
        return None, None
    if _reference is None:
        _reference = (reference_model(), reference_input())
    model, x = _reference

    def call() -> Any:
        return model(x)

    key = ("torch-cpu", s.threads, s.resolved_clock(), tuple(s.cpus or ()))
    return call, nominal_for(key, call, s)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
