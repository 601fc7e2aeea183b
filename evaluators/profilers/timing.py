"""Shared pieces of the measuring profilers: calling a model on an example input, timing it
with warmup and repeats, and summarising the samples.

How a host device is timed on a shared, noisy machine (figures: ``bench/profilers.py``):

- **Clock.** ``auto`` (the default) uses the thread's CPU time when the model runs on one
  thread, so time the OS gives to other processes is not counted (under two competing busy
  loops, wall-clock samples were ~3x the thread-CPU ones), and wall time otherwise. On a quiet
  core the two agree: each result records their per-sample ratio as ``running_fraction``.
- **Method.** What a CPU clock cannot see is the CPU running slower: other processes' and, on
  a virtual machine, other tenants' cache and memory traffic, in phases of ~0.1 s to seconds
  (the same subnet ran 3.3 and 5.3 ms per call in alternating phases on the quiet machine).
  ``reference`` (torch-cpu's default) times a fixed reference network right after every
  sample and reports the median ratio times the reference's nominal latency (``reference.py``):
  both see the same phase, so the ratio holds still. ``min`` (onnxruntime-cpu's default)
  reports the fastest sample over ``max_seconds``: right when a quiet moment came by, which
  many short samples (ORT: ~0.4 ms) catch and few long ones (eager torch: ~3 ms) often miss.
  ``median`` is the typical sample of exactly ``repeats`` (the method before; it follows the
  load).
- **How long.** ``reference`` and ``min`` sample for ``max_seconds`` on the samples' clock
  (and at least ``repeats`` samples): with the thread-CPU clock, a loaded host gets as many
  samples as a quiet one, in more wall time (at most ``WALL_CAP`` x). Stopping as soon as the
  minimum looked stable was tried and was worse: a slow phase is stable too.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from evaluators.profilers.base import LatencyResult, ProfilerError, ProfilerSettings

#: ``wall``: elapsed time. ``thread_cpu``: CPU time of the calling thread, which leaves out time
#: the OS gave to other processes; only meaningful single-threaded (on a shared, noisy host).
CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    "thread_cpu": time.thread_time,
}

#: sampling never goes on longer than this many times ``max_seconds`` of wall time
WALL_CAP = 5.0


class TimedSettings(ProfilerSettings):
    """Settings shared by the profilers that time a model on the host."""

    threads: int = Field(default=1, ge=1, le=256, description="intra-op threads, pinned")
    batch: int = Field(default=1, ge=1, le=1024, description="batch size (input repeated)")
    warmup: int = Field(default=3, ge=0, le=1000)
    repeats: int = Field(default=20, ge=1, le=10_000, description="the fewest timed samples")
    min_sample_ms: float = Field(
        default=1.0, ge=0, le=10_000, description="each sample loops the model at least this long"
    )
    method: Literal["reference", "min", "median"] = Field(
        default="reference",
        description="reference: median ratio to an interleaved reference network x its "
                    "nominal latency; min: fastest sample; median: median sample",
    )
    max_seconds: float = Field(
        default=1.0, ge=0, le=600,
        description="methods reference and min: keep sampling for this many seconds on the "
                    "clock (thread CPU time: more wall time on a loaded host, at most 5x); 0: "
                    "exactly 'repeats' samples",
    )
    reference_ms: float | None = Field(
        default=None, gt=0, le=60_000,
        description="method reference: the reference network's nominal latency on this "
                    "device (default: calibrated once per process)",
    )
    clock: Literal["auto", "wall", "thread_cpu"] = Field(
        default="auto", description="auto: thread_cpu with threads 1, else wall"
    )
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

    def resolved_clock(self) -> str:
        """The clock ``auto`` stands for with these settings."""
        if self.clock != "auto":
            return self.clock
        return "thread_cpu" if self.threads == 1 else "wall"


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


@dataclass
class Timing:
    """Samples (ms per call) of one timed function, and how they were taken."""

    samples: list[float]
    calls_per_sample: int
    clock: str
    seconds: float  # wall time spent sampling (warmup excluded)
    #: median over samples of thread-CPU time / wall time: ~1 when the thread ran undisturbed
    running_fraction: float
    #: method reference: the reference's ms per call right after each sample
    reference: list[float] = field(default_factory=list)


def _timed(fn: Callable[[], Any], inner: int, now: Callable[[], float]) -> tuple[float, float]:
    """ms per call over ``inner`` calls, and the thread-CPU / wall ratio over them."""
    w0, c0, t0 = time.perf_counter(), time.thread_time(), now()
    for _ in range(inner):
        fn()
    t1, c1, w1 = now(), time.thread_time(), time.perf_counter()
    return (t1 - t0) * 1e3 / inner, (c1 - c0) / (w1 - w0) if w1 > w0 else 1.0


def time_samples(fn: Callable[[], Any], settings: TimedSettings, *, inner: int | None = None,
                 warmup: int | None = None, reference: Callable[[], Any] | None = None,
                 ) -> Timing:
    """Run ``fn`` ``warmup`` times, then timed samples of ``inner`` calls each (calibrated to
    ``min_sample_ms`` when not given): ``repeats`` of them, and for methods ``reference`` and
    ``min`` as many more as ``max_seconds`` of wall time allows; ms per call. With
    ``reference`` given, each sample is followed by a sample of ``reference``."""
    s = settings
    clock = s.resolved_clock()
    now = CLOCKS[clock]
    samples: list[float] = []
    ref_samples: list[float] = []
    ratios: list[float] = []
    budget = s.max_seconds if s.method != "median" else 0.0
    warmup = s.warmup if warmup is None else warmup

    with pinned(s.cpus):
        for _ in range(warmup):
            fn()
        if inner is None:
            inner = calibrate_inner(fn, s.min_sample_ms)
        ref_inner = 1
        if reference is not None:
            for _ in range(max(1, warmup)):
                reference()
            ref_inner = calibrate_inner(reference, s.min_sample_ms)
        # the budget runs on the samples' clock: on a loaded host the thread-CPU clock gathers
        # as many samples as on a quiet one, in more wall time (capped at WALL_CAP x budget)
        start, wall_start = now(), time.perf_counter()
        while len(samples) < s.repeats or (
            now() - start < budget and time.perf_counter() - wall_start < WALL_CAP * budget
        ):
            sample, ratio = _timed(fn, inner, now)
            samples.append(sample)
            ratios.append(ratio)
            if reference is not None:
                ref_samples.append(_timed(reference, ref_inner, now)[0])
        seconds = time.perf_counter() - wall_start
    return Timing(samples, inner, clock, seconds, statistics.median(ratios), ref_samples)


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


def timed_result(timing: Timing, settings: TimedSettings, *,
                 nominal_ms: float | None = None, **extra: Any) -> LatencyResult:
    """The result every host-timing profiler reports: the latency by ``settings.method``, the
    samples it is the median/minimum of, their spread, how they were taken and the settings.

    Method ``reference``: ``samples_ms`` are the samples normalised to the reference's
    ``nominal_ms`` (sample / the reference right after it * nominal), the raw ones are
    summarised under ``raw``."""
    method = settings.method
    samples = timing.samples
    details: dict[str, Any] = {}
    if method == "reference":
        if nominal_ms is None or len(timing.reference) != len(samples):
            raise ProfilerError("method 'reference' needs a reference sample after each sample "
                                "and the reference's nominal latency")
        ratios = [x / r for x, r in zip(samples, timing.reference, strict=True)]
        details = {"raw": summarise(samples), "reference_nominal_ms": nominal_ms,
                   "reference_median_ms": statistics.median(timing.reference),
                   "ratio_median": statistics.median(ratios)}
        samples = [q * nominal_ms for q in ratios]
    stats = summarise(samples)
    return LatencyResult(
        latency_ms=stats["min_ms" if method == "min" else "median_ms"],
        samples_ms=samples,
        details={
            **stats, "method": method, "threads": settings.threads,
            "clock": timing.clock, "cpus": settings.cpus, "batch": settings.batch,
            "calls_per_sample": timing.calls_per_sample, "samples": len(samples),
            "measuring_s": timing.seconds, "running_fraction": timing.running_fraction,
            "host_cpus": os.cpu_count(), **details, **extra,
        },
    )
