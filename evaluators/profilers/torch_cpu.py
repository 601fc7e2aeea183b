"""``torch-cpu``: wall-clock latency of a subnet in eager PyTorch on the host CPU."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any, ClassVar

from evaluators.profilers.base import LatencyResult, Profiler, ProfilerError, ProfilerSettings
from evaluators.profilers.timing import (
    TimedSettings,
    calibrate_inner,
    call_model,
    repeat_batch,
    time_samples,
    timed_result,
    with_input_shape,
)


class TorchCpuSettings(TimedSettings):
    """threads, batch, warmup, repeats, min_sample_ms, clock (see ``TimedSettings``)."""


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
    """Median of ``repeats`` timed samples after ``warmup`` runs, eager mode, pinned threads."""

    name: ClassVar[str] = "torch-cpu"
    version: ClassVar[str] = "1"
    Settings: ClassVar[type[ProfilerSettings]] = TorchCpuSettings

    def measure(self, model: Any, example_input: Any) -> LatencyResult:
        s: TorchCpuSettings = self.settings  # type: ignore[assignment]
        inputs = repeat_batch(with_input_shape(example_input, s.input_shape), s.batch)
        with measuring_state(model, s.threads):
            try:
                call_model(model, inputs)  # a first call surfaces shape errors before timing

                def run() -> Any:
                    return call_model(model, inputs)

                inner = calibrate_inner(run, s.min_sample_ms)
                samples = time_samples(
                    run, warmup=s.warmup, repeats=s.repeats, inner=inner, clock=s.clock,
                    cpus=s.cpus,
                )
            except ProfilerError:
                raise
            except Exception as exc:  # a model that cannot run on this input fails the trial
                raise ProfilerError(f"torch-cpu: the model failed on its input: {exc}") from exc
        return timed_result(samples, s, inner, torch=_torch_version())


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
