"""Shared pieces of the measuring profilers: calling a model on an example input, timing it
with warmup and repeats, and summarising the samples."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from evaluators.profilers.base import LatencyResult, ProfilerError, ProfilerSettings

#: ``wall``: elapsed time. ``thread_cpu``: CPU time of the calling thread, which leaves out time
#: the OS gave to other processes; only meaningful single-threaded (on a shared, noisy host).
CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    "thread_cpu": time.thread_time,
}


class TimedSettings(ProfilerSettings):
    """Settings shared by the profilers that time a model on the host."""

    threads: int = Field(default=1, ge=1, le=256, description="intra-op threads, pinned")
    batch: int = Field(default=1, ge=1, le=1024, description="batch size (input repeated)")
    warmup: int = Field(default=3, ge=0, le=1000)
    repeats: int = Field(default=15, ge=1, le=10_000)
    min_sample_ms: float = Field(
        default=5.0, ge=0, le=10_000, description="each sample loops the model at least this long"
    )
    clock: Literal["wall", "thread_cpu"] = "wall"
    input_shape: list[Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(
        default=None, min_length=1, max_length=8,
        description="measure on an input of this shape instead of the arch's example input",
    )
    cpus: list[int] | None = Field(
        default=None, min_length=1, max_length=1024,
        description="pin the measuring thread to these CPU ids (no migrations between samples)",
    )

    @model_validator(mode="after")
    def _thread_clock(self) -> TimedSettings:
        if self.clock == "thread_cpu" and self.threads != 1:
            raise ValueError("clock 'thread_cpu' needs threads: 1 (it times one thread only)")
        return self


def split_input(example_input: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Normalise an example input into positional and keyword arguments.

    A tensor is one positional argument, a tuple/list is the positional arguments and a mapping
    (e.g. ``{"input_ids": ..., "attention_mask": ...}`` for BERT subnets) is keyword arguments.
    """
    import torch

    if isinstance(example_input, torch.Tensor):
        return (example_input,), {}
    if isinstance(example_input, Mapping):
        return (), dict(example_input)
    if isinstance(example_input, Sequence) and not isinstance(example_input, str | bytes):
        return tuple(example_input), {}
    raise ProfilerError(
        f"unsupported example input type {type(example_input).__name__}; "
        "allowed: a tensor, a tuple/list of tensors or a dict of tensors"
    )


def call_model(model: Any, example_input: Any) -> Any:
    args, kwargs = split_input(example_input)
    return model(*args, **kwargs)


def with_input_shape(example_input: Any, shape: list[int] | None) -> Any:
    """The example input, or (``shape`` set) a fresh tensor of that shape and the same dtype:
    a device may fix the input size its deployment uses (e.g. a camera's resolution)."""
    import torch

    if shape is None:
        return example_input
    if not isinstance(example_input, torch.Tensor):
        raise ProfilerError(
            "setting 'input_shape' applies to models taking one tensor; this one takes "
            f"{type(example_input).__name__}"
        )
    if len(shape) != example_input.dim():
        raise ProfilerError(
            f"input_shape {shape} has {len(shape)} dims; the model's input has "
            f"{example_input.dim()} ({list(example_input.shape)})"
        )
    gen = torch.Generator().manual_seed(0)
    if example_input.dtype.is_floating_point:
        return torch.randn(shape, generator=gen, dtype=example_input.dtype)
    return torch.zeros(shape, dtype=example_input.dtype)


def repeat_batch(example_input: Any, batch: int) -> Any:
    """The example input with its leading (batch) dimension repeated ``batch`` times."""
    import torch

    if batch == 1:
        return example_input

    def rep(t: Any) -> Any:
        if isinstance(t, torch.Tensor) and t.dim() > 0:
            return t.repeat(batch, *([1] * (t.dim() - 1)))
        return t

    args, kwargs = split_input(example_input)
    if kwargs:
        return {k: rep(v) for k, v in kwargs.items()}
    return rep(args[0]) if len(args) == 1 else tuple(rep(a) for a in args)


def calibrate_inner(fn: Callable[[], Any], min_sample_ms: float, *, limit: int = 10_000) -> int:
    """How many calls of ``fn`` make one sample last at least ``min_sample_ms``.

    Very short subnets (well under a millisecond) are dominated by timer and scheduling noise
    when timed one call at a time, so each sample times a loop of calls.
    """
    if min_sample_ms <= 0:
        return 1
    t0 = time.perf_counter()
    fn()
    one_ms = max((time.perf_counter() - t0) * 1e3, 1e-3)
    return int(min(limit, max(1, -(-min_sample_ms // one_ms))))


@contextlib.contextmanager
def pinned(cpus: list[int] | None) -> Iterator[None]:
    """Pin the calling thread to ``cpus`` for the block (Linux), restoring its affinity."""
    if not cpus:
        yield
        return
    if not hasattr(os, "sched_setaffinity"):
        raise ProfilerError("setting 'cpus' needs a platform with sched_setaffinity (Linux)")
    before = os.sched_getaffinity(0)
    if not set(cpus) <= before:
        raise ProfilerError(
            f"cpus {sorted(set(cpus) - before)} are not available to this process; "
            f"allowed: {sorted(before)}"
        )
    os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def time_samples(
    fn: Callable[[], Any],
    *,
    warmup: int,
    repeats: int,
    inner: int,
    clock: str = "wall",
    cpus: list[int] | None = None,
) -> list[float]:
    """Run ``fn`` ``warmup`` times, then ``repeats`` samples of ``inner`` calls; ms per call."""
    now = CLOCKS[clock]
    samples = []
    with pinned(cpus):
        for _ in range(warmup):
            fn()
        for _ in range(repeats):
            t0 = now()
            for _ in range(inner):
                fn()
            samples.append((now() - t0) * 1e3 / inner)
    return samples


def summarise(samples: Sequence[float]) -> dict[str, float]:
    """Median, spread (IQR, min, max) and coefficient of variation of latency samples."""
    if not samples:
        raise ProfilerError("no latency samples were taken")
    med = statistics.median(samples)
    q = statistics.quantiles(samples, n=4) if len(samples) >= 2 else [med, med, med]
    mean = statistics.fmean(samples)
    std = statistics.pstdev(samples) if len(samples) >= 2 else 0.0
    return {
        "median_ms": med,
        "mean_ms": mean,
        "min_ms": min(samples),
        "max_ms": max(samples),
        "iqr_ms": q[2] - q[0],
        "cv": std / mean if mean > 0 else 0.0,
    }


def timed_result(
    samples: list[float], settings: TimedSettings, inner: int, **extra: Any
) -> LatencyResult:
    """The result every host-timing profiler reports: the median, the spread, the settings."""
    stats = summarise(samples)
    return LatencyResult(
        latency_ms=stats["median_ms"],
        samples_ms=samples,
        details={
            **stats, "threads": settings.threads, "clock": settings.clock,
            "cpus": settings.cpus, "batch": settings.batch, "calls_per_sample": inner,
            "host_cpus": os.cpu_count(), **extra,
        },
    )
