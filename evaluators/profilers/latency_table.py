"""A per-layer latency lookup table: measure each distinct layer once on a device, then predict
a subnet's latency as the sum over its layers (nn-Meter's idea).

Recording runs the model once. A *layer* is a leaf-module call (keyed by the module's repr and
its inputs' shapes/strides/dtypes) or an ATen op outside any leaf module (seen through a
``TorchDispatchMode``; keyed by op name and argument layout), so functional code in ``forward``
(residual adds, attention matmuls) is counted too. A key not in the table is measured by
replaying it on fresh tensors of the same layout (integers as zeros, so indices stay valid) with
the device's thread count; the table only grows. Container modules add one measured empty-call
overhead each.

Entries are timed with the device's clock and method (by default each sample of the layer is
followed by the reference network, see ``reference.py``, so entries and measured latencies share
units and the host's slow phases cancel). Layers replayed alone run hotter (caches, branch
predictors) than inside a network, and the Python of each ``forward`` between layers is in no
entry, so the raw sum under-predicts small networks. ``calibrate`` fits, once per device, a
scale and a per-lookup overhead by least squares on a few measured reference subnets.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators.profilers.base import ProfilerError, settings_hash
from evaluators.profilers.timing import calibrate_inner, call_model, time_samples
from evaluators.profilers.torch_cpu import (
    TorchCpuSettings,
    keep_heap,
    measuring_state,
    reference_and_nominal,
)

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class _Meta:
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: Any

    def key(self) -> str:
        return f"T{list(self.shape)}{list(self.stride)}{str(self.dtype).replace('torch.', '')}"

    def make(self) -> Any:
        import torch

        t = torch.empty_strided(self.shape, self.stride, dtype=self.dtype)
        if self.dtype.is_floating_point:
            t.normal_()
        else:
            t.zero_()  # integer tensors are often indices: zero is always in range
        return t


@dataclass
class OpCall:
    """One table entry's worth of work: a leaf module call or an ATen op outside any leaf."""

    key: str
    label: str  # the module class or ATen op name, for per-kind totals
    fn: Any  # a leaf nn.Module or an OpOverload
    args: Any
    kwargs: dict[str, Any]


def _meta(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return _Meta(tuple(obj.shape), tuple(obj.stride()), obj.dtype)
    if isinstance(obj, list | tuple):
        return type(obj)(_meta(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _meta(v) for k, v in obj.items()}
    return obj


def _key_of(obj: Any) -> str:
    if isinstance(obj, _Meta):
        return obj.key()
    if isinstance(obj, list | tuple):
        return "(" + ",".join(_key_of(o) for o in obj) + ")"
    if isinstance(obj, dict):
        return "{" + ",".join(f"{k}={_key_of(v)}" for k, v in sorted(obj.items())) + "}"
    return repr(obj)


def _materialise(obj: Any) -> Any:
    if isinstance(obj, _Meta):
        return obj.make()
    if isinstance(obj, list | tuple):
        return type(obj)(_materialise(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _materialise(v) for k, v in obj.items()}
    return obj


def _is_leaf(module: Any) -> bool:
    return next(iter(module.children()), None) is None


def record_ops(model: Any, example_input: Any) -> tuple[list[OpCall], int]:
    """What one inference runs, in order, at the grain the table keeps: each call of a leaf
    module (conv, norm, activation, linear...: its Python overhead included), and each ATen op
    run outside any leaf module (functional adds, pooling in ``forward``, attention matmuls).
    Also returns the number of container-module calls (their overhead is one probe each)."""
    import torch
    from torch.nn.modules import module as nn_module
    from torch.utils._python_dispatch import TorchDispatchMode

    calls: list[OpCall] = []
    n_containers = 0
    depth = 0  # > 0 while inside a leaf module

    def pre(module: Any, args: Any) -> None:
        nonlocal depth, n_containers
        if not _is_leaf(module):
            n_containers += 1 if depth == 0 else 0
            return
        if depth == 0:
            margs = _meta(tuple(args))
            key = f"{type(module).__name__}:{module!r}{_key_of(margs)}"
            calls.append(OpCall(key, type(module).__name__, module, margs, {}))
        depth += 1

    def post(module: Any, args: Any, out: Any) -> None:
        nonlocal depth
        if _is_leaf(module):
            depth -= 1

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            if depth == 0:
                margs, mkwargs = _meta(args), _meta(kwargs)
                name = f"{func._schema.name}.{func._overloadname}"
                key = f"{name}{_key_of(margs)}{_key_of(mkwargs)}"
                calls.append(OpCall(key, name, func, margs, mkwargs))
            return func(*args, **kwargs)

    handles = [nn_module.register_module_forward_pre_hook(pre),
               nn_module.register_module_forward_hook(post)]
    try:
        with measuring_state(model, torch.get_num_threads()), Recorder():
            call_model(model, example_input)
    except Exception as exc:
        raise ProfilerError(f"latency table: the model failed on its input: {exc}") from exc
    finally:
        for handle in handles:
            handle.remove()
    return calls, n_containers


class _Probe:
    """An empty module: its call time is the per-module overhead."""

    def __new__(cls) -> Any:
        import torch

        class Empty(torch.nn.Module):
            def forward(self, x: Any) -> Any:
                return x

        return Empty()


@dataclass
class Prediction:
    latency_ms: float  # calibrated: scale * raw_ms + per_call_ms * (n_ops + n_containers)
    raw_ms: float  # the plain sum of table entries
    n_ops: int  # table lookups: leaf-module calls + ATen ops outside leaves
    n_containers: int
    new_entries: int
    measuring_s: float
    per_op_ms: dict[str, float] = field(default_factory=dict)


class LatencyTable:
    """Per-op latencies on one host device (torch-cpu settings), grown on demand."""

    def __init__(self, settings: TorchCpuSettings | dict[str, Any] | None = None):
        if not isinstance(settings, TorchCpuSettings):
            settings = TorchCpuSettings.model_validate(dict(settings or {}))
        self.settings = settings
        self.entries: dict[str, float] = {}
        self.module_call_ms: float | None = None
        self.scale = 1.0
        self.per_call_ms = 0.0

    @property
    def settings_hash(self) -> str:
        return settings_hash(self.settings.model_dump())

    def _time(self, fn: Any) -> float:
        s = self.settings
        inner = calibrate_inner(fn, max(s.min_sample_ms / 5, 0.2))
        quick = s.model_copy(update={"repeats": max(3, s.repeats // 3),
                                     "max_seconds": s.max_seconds / 40})
        # the same method, clock and reference as the torch-cpu device the table predicts
        reference, nominal = reference_and_nominal(s)
        timing = time_samples(fn, quick, inner=inner, warmup=1, reference=reference)
        if reference is not None and nominal is not None:
            return nominal * statistics.median(
                x / r for x, r in zip(timing.samples, timing.reference, strict=True))
        return min(timing.samples) if s.method == "min" else statistics.median(timing.samples)

    def _measure_op(self, call: OpCall) -> float:
        import copy

        args, kwargs = _materialise(call.args), _materialise(call.kwargs)
        # a private copy of a leaf module: replaying must not touch the measured model
        fn = copy.deepcopy(call.fn).eval() if hasattr(call.fn, "parameters") else call.fn
        try:
            return self._time(lambda: fn(*args, **kwargs))
        except Exception as exc:  # an op that cannot be replayed in isolation costs nothing
            log.warning("latency table: cannot replay %s (%s); counted as 0", call.key[:80], exc)
            return 0.0

    def predict(self, model: Any, example_input: Any) -> Prediction:
        """Sum of table entries over ``model``'s ops, measuring the ones not seen before."""
        import torch

        calls, n_containers = record_ops(model, example_input)
        t0 = time.perf_counter()
        new = 0
        if self.settings.keep_heap:  # as the torch-cpu device the table predicts
            keep_heap()
        with measuring_state(torch.nn.Module(), self.settings.threads):
            if self.module_call_ms is None:
                probe, x = _Probe(), torch.zeros(1)
                self.module_call_ms = self._time(lambda: probe(x))
            for call in calls:
                if call.key not in self.entries:
                    self.entries[call.key] = self._measure_op(call)
                    new += 1
        per_op: dict[str, float] = {}
        for call in calls:
            per_op[call.label] = per_op.get(call.label, 0.0) + self.entries[call.key]
        raw = sum(per_op.values()) + n_containers * self.module_call_ms
        total = self.scale * raw + self.per_call_ms * (len(calls) + n_containers)
        return Prediction(
            total, raw, len(calls), n_containers, new, time.perf_counter() - t0, per_op
        )

    def calibrate(self, references: list[tuple[Any, Any, float]]) -> dict[str, float]:
        """Fit ``scale`` and ``per_call_ms`` from ``(model, example_input, measured_ms)`` triples
        measured on this device (see ``calibrate_from``)."""
        pairs = []
        for model, example_input, measured in references:
            if not measured > 0:
                raise ValueError(f"reference latency must be > 0 ms, got {measured}")
            pairs.append((self.predict(model, example_input), measured))
        return self.calibrate_from(pairs)

    def calibrate_from(self, pairs: list[tuple[Prediction, float]]) -> dict[str, float]:
        """Fit ``scale`` and ``per_call_ms`` so that ``scale * raw + per_call_ms * lookups``
        matches the measured latencies of the reference subnets, by least squares on the
        relative error, both constants >= 0 (the OFA / nn-Meter practice of a few constants
        fitted on measured networks).

        ``per_call_ms`` stands for what isolated replays leave out: the Python of each
        ``forward`` between its layers and the state a layer finds inside a network. ``scale``
        absorbs a proportional difference (layers replayed alone run from warm caches)."""
        if len(pairs) < 2:
            raise ValueError("calibrating a latency table needs at least 2 reference subnets")
        rows = [(p.raw_ms / m, (p.n_ops + p.n_containers) / m) for p, m in pairs]
        self.scale, self.per_call_ms = _nonnegative_fit(rows)
        return {"scale": self.scale, "per_call_ms": self.per_call_ms}

    # --- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the table as JSON (atomically: concurrent workers may share a file)."""
        data = {
            "format": FORMAT_VERSION,
            "settings": self.settings.model_dump(),
            "module_call_ms": self.module_call_ms,
            "scale": self.scale,
            "per_call_ms": self.per_call_ms,
            "entries": self.entries,
        }
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a saved table; ValueError names what is wrong with the file."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"latency table {path}: cannot read it: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise ValueError(f"latency table {path}: not a format-{FORMAT_VERSION} table")
        entries = data.get("entries")
        if not isinstance(entries, dict) or not all(
            isinstance(v, int | float) and v >= 0 for v in entries.values()
        ):
            raise ValueError(f"latency table {path}: 'entries' must map op keys to ms >= 0")
        table = cls(data.get("settings"))
        table.entries = {str(k): float(v) for k, v in entries.items()}
        overhead = data.get("module_call_ms")
        table.module_call_ms = float(overhead) if isinstance(overhead, int | float) else None
        for name in ("scale", "per_call_ms"):
            value = data.get(name, getattr(table, name))
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"latency table {path}: {name!r} must be a number >= 0")
            setattr(table, name, float(value))
        return table


def _nonnegative_fit(rows: list[tuple[float, float]]) -> tuple[float, float]:
    """``(a, b) >= 0`` minimising ``sum((a * x + b * y - 1) ** 2)`` over ``rows`` of ``(x, y)``:
    the two-variable least squares, or the better one-variable fit when that has a negative
    coefficient."""
    sxx = sum(x * x for x, _ in rows)
    syy = sum(y * y for _, y in rows)
    sxy = sum(x * y for x, y in rows)
    sx, sy = sum(x for x, _ in rows), sum(y for _, y in rows)
    det = sxx * syy - sxy * sxy
    if det > 1e-12 * max(sxx * syy, 1e-300):
        a, b = (sx * syy - sy * sxy) / det, (sy * sxx - sx * sxy) / det
        if a >= 0 and b >= 0:
            return a, b

    def loss(a: float, b: float) -> float:
        return sum((a * x + b * y - 1) ** 2 for x, y in rows)

    only_a = (sx / sxx if sxx > 0 else 0.0, 0.0)
    only_b = (0.0, sy / syy if syy > 0 else 0.0)
    return min(only_a, only_b, key=lambda ab: loss(*ab))
