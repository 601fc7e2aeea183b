"""``onnxruntime-cpu``: latency of the subnet exported to ONNX, run by an ONNX Runtime session."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from evaluators.profilers.base import LatencyResult, Profiler, ProfilerError, ProfilerSettings
from evaluators.profilers.onnx_export import export_onnx, input_feed
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
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    spinning: bool = Field(
        default=False,
        description="let idle intra-op threads spin (faster alone, steals the CPU from "
                    "other processes on a shared host; no effect with threads: 1)",
    )


class OnnxRuntimeCpuProfiler(Profiler):
    """Export (TorchScript exporter), one sequential ORT CPU session, timed ``run`` calls
    summarised by ``statistic`` (``timing.py``)."""

    name: ClassVar[str] = "onnxruntime-cpu"
    version: ClassVar[str] = "2"
    Settings: ClassVar[type[ProfilerSettings]] = OrtCpuSettings

    def measure(self, model: Any, example_input: Any) -> LatencyResult:
        import onnxruntime as ort

        s: OrtCpuSettings = self.settings  # type: ignore[assignment]
        inputs = repeat_batch(with_input_shape(example_input, s.input_shape), s.batch)
        onnx_bytes = export_onnx(model, inputs)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = s.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _LEVELS[s.graph_optimization]
        )
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning",
                                      "1" if s.spinning else "0")
        try:
            session = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
            wanted = {i.name for i in session.get_inputs()}
            # the exporter drops inputs the graph does not use (e.g. an unused mask)
            feed = {k: v for k, v in input_feed(inputs).items() if k in wanted}

            def run() -> Any:
                return session.run(None, feed)

            run()
            timing = time_samples(run, s)
        except ProfilerError:
            raise
        except Exception as exc:
            raise ProfilerError(f"onnxruntime-cpu: the session failed: {exc}") from exc
        return timed_result(timing, s, onnx_bytes=len(onnx_bytes),
                            onnxruntime=ort.__version__)
