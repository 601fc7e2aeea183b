"""``onnxruntime-cpu``: latency of the subnet exported to ONNX, run by an ONNX Runtime session."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from evaluators.profilers.base import LatencyResult, Profiler, ProfilerError, ProfilerSettings
from evaluators.profilers.onnx_export import export_onnx, input_feed
from evaluators.profilers.reference import nominal_for, reference_input, reference_model
from evaluators.profilers.timing import (
    TimedSettings,
    repeat_batch,
    time_samples,
    timed_result,
    with_input_shape,
)

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
           "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


class OrtCpuSettings(TimedSettings):
    # ORT's runs are short and native: the fastest of ~700 samples repeated within 0.7-3.0% in
    # 10 of 11 batches of 10 measurements (one 8.3%), as the host was and under two busy loops
    # (bench/profilers.py), where the reference ratio gave 0.5-6% and 6-14% under the loops
    method: Literal["reference", "min", "median"] = Field(
        default="min",
        description="min: fastest sample; reference: median ratio to an interleaved reference "
                    "network x its nominal latency; median: median sample",
    )
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    spinning: bool = Field(
        default=False,
        description="let idle intra-op threads spin (faster alone, steals the CPU from "
                    "other processes on a shared host; no effect with threads: 1)",
    )


class OnnxRuntimeCpuProfiler(Profiler):
    """Export (TorchScript exporter), one sequential ORT CPU session, timed ``run`` calls
    summarised by ``method`` (``timing.py``)."""

    name: ClassVar[str] = "onnxruntime-cpu"
    version: ClassVar[str] = "2"
    Settings: ClassVar[type[ProfilerSettings]] = OrtCpuSettings

    def measure(self, model: Any, example_input: Any) -> LatencyResult:
        import onnxruntime as ort

        s: OrtCpuSettings = self.settings  # type: ignore[assignment]
        inputs = repeat_batch(with_input_shape(example_input, s.input_shape), s.batch)
        onnx_bytes = export_onnx(model, inputs)
        try:
            session = _session(onnx_bytes, s)
            wanted = {i.name for i in session.get_inputs()}
            # the exporter drops inputs the graph does not use (e.g. an unused mask)
            feed = {k: v for k, v in input_feed(inputs).items() if k in wanted}

            def run() -> Any:
                return session.run(None, feed)

            run()
            reference, nominal = None, None
            if s.method == "reference":
                key = ("onnxruntime-cpu", s.threads, s.graph_optimization, s.spinning,
                       s.resolved_clock(), tuple(s.cpus or ()))
                reference = _reference_call(key, s)
                nominal = nominal_for(key, reference, s)
            timing = time_samples(run, s, reference=reference)
        except ProfilerError:
            raise
        except Exception as exc:
            raise ProfilerError(f"onnxruntime-cpu: the session failed: {exc}") from exc
        return timed_result(timing, s, nominal_ms=nominal, onnx_bytes=len(onnx_bytes),
                            onnxruntime=ort.__version__)


def _session(onnx_bytes: bytes, s: OrtCpuSettings) -> Any:
    """A sequential CPU session with the device's threads, optimisation level and spinning."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = s.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, _LEVELS[s.graph_optimization]
    )
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if s.spinning else "0")
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


_references: dict[tuple[Any, ...], Any] = {}


def _reference_call(key: tuple[Any, ...], s: OrtCpuSettings) -> Any:
    """A run of the reference network exported to ONNX, in a session with the same options
    (built once per process and options)."""
    if key not in _references:
        x = reference_input()
        session = _session(export_onnx(reference_model(), x), s)
        feed = input_feed(x)
        _references[key] = lambda: session.run(None, feed)
    return _references[key]
