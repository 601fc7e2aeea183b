"""``gap8``: latency and memory of an int8 subnet on GAP8, from the calibrated analytic model
(``mode: analytic``) or from the user's GAP SDK + GVSOC flow (``mode: gvsoc``)."""

from __future__ import annotations

import shlex
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from evaluators.profilers.base import LatencyResult, Profiler, ProfilerSettings
from evaluators.profilers.gap8 import gvsoc
from evaluators.profilers.gap8.graph import walk
from evaluators.profilers.gap8.model import (
    FITTED,
    Gap8Constants,
    Gap8Hardware,
    estimate,
    uncertainty,
)
from evaluators.profilers.onnx_export import export_onnx, input_feed
from evaluators.profilers.timing import with_input_shape

TOP_LAYERS = 10
#: GVSOC's error against silicon, "typically under 10%" (shared/data/gap8/README.md)
GVSOC_ERR_PCT = 10.0


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


class Gap8Settings(ProfilerSettings):
    mode: Literal["analytic", "gvsoc"] = "analytic"
    cluster_mhz: float = Field(default=175.0, gt=0, le=500, description="cluster clock")
    l2_budget_kb: float = Field(default=350.0, gt=0, le=512, description="L2 given to the tiler")
    # the analytic model's fitted constants; override only with a fit of your own
    eta_dense: float = Field(default=FITTED.eta_dense, gt=0, le=32)
    eta_depthwise: float = Field(default=FITTED.eta_depthwise, gt=0, le=32)
    out_cycles: float = Field(default=FITTED.out_cycles, ge=0, le=100)
    l3_mb_s: float = Field(default=FITTED.l3_mb_s, gt=0, le=1000)
    layer_overhead_cycles: float = Field(default=FITTED.layer_overhead_cycles, ge=0, le=1e7)
    pass_cycles: float = Field(default=FITTED.pass_cycles, ge=0, le=1e4)
    # gvsoc mode: argv template from the server config ({onnx}, {workdir}, {cluster_mhz})
    command: list[str] | None = Field(default=None, description="gvsoc command (config only)")
    timeout_s: float = Field(default=900.0, gt=0, le=24 * 3600)
    onnx_format: Literal["float", "int8_qdq"] = Field(
        default="float",
        description="gvsoc mode: hand the flow a float ONNX (NNTool quantises it) or a QDQ int8 "
                    "ONNX calibrated on a few inputs",
    )
    calibration_samples: int = Field(
        default=8, ge=1, le=256, description="int8_qdq: inputs used to calibrate activations"
    )
    input_shape: list[Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(
        default=None, min_length=1, max_length=8,
        description="profile on an input of this shape instead of the arch's example input",
    )
    layer_details: bool = Field(
        default=False, description="keep every layer in the result (else the 10 costliest)"
    )
    warmup: int = Field(default=0, ge=0, le=0, description="unused: the model is deterministic")
    repeats: int = Field(default=1, ge=1, le=1, description="unused: one run per subnet")

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return shlex.split(value) if isinstance(value, str) else value

    @field_validator("command")
    @classmethod
    def _placeholders(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else gvsoc.check_template(value)

    @model_validator(mode="after")
    def _mode_needs_command(self) -> Gap8Settings:
        if self.mode == "gvsoc" and not self.command:
            raise ValueError("mode 'gvsoc' needs a 'command' (set in the server config file)")
        return self

    def constants(self) -> Gap8Constants:
        return Gap8Constants(
            eta_dense=self.eta_dense, eta_depthwise=self.eta_depthwise,
            out_cycles=self.out_cycles, l3_mb_s=self.l3_mb_s,
            layer_overhead_cycles=self.layer_overhead_cycles, pass_cycles=self.pass_cycles)

    def hardware(self) -> Gap8Hardware:
        return Gap8Hardware(self.cluster_mhz, int(self.l2_budget_kb * 1024))


class Gap8Profiler(Profiler):
    """GAP8 latency (cluster cycles / cluster clock) plus int8 memory footprint metrics."""

    name: ClassVar[str] = "gap8"
    # 2: per-layer kernel model refit on 12 nets; 3: per-plane-pass kernel term (issue 23)
    version: ClassVar[str] = "3"
    Settings: ClassVar[type[ProfilerSettings]] = Gap8Settings
    extra_metrics: ClassVar[dict[str, str]] = {
        "cycles": "cycles",
        "latency_err_pct": "%",
        "params_bytes": "B",
        "peak_activation_bytes": "B",
        "fits_l2": "bool",
    }
    config_only_settings: ClassVar[frozenset[str]] = frozenset({"command", "timeout_s"})

    def _layers(self, layers: list[dict[str, Any]]) -> dict[str, Any]:
        """All layers, or (the default: trial records stay small) the costliest ten."""
        if self.settings.layer_details:  # type: ignore[attr-defined]
            return {"layers": layers}
        top = sorted(layers, key=lambda x: -x["cycles"])[:TOP_LAYERS]
        return {"top_layers": top}

    @property
    def wants_calibration_inputs(self) -> bool:
        """Whether ``measure`` uses real inputs (the int8 QDQ export calibrates on them)."""
        s: Gap8Settings = self.settings  # type: ignore[assignment]
        return s.mode == "gvsoc" and s.onnx_format == "int8_qdq"

    def _band(self) -> dict[str, Any]:
        """The analytic latency's uncertainty: the shipped model's out-of-sample error (it says
        so when the constants were overridden and the band no longer applies)."""
        s: Gap8Settings = self.settings  # type: ignore[assignment]
        return {**uncertainty(), "applies": s.constants() == FITTED}

    def _onnx(self, model: Any, example_input: Any,
              calibration_inputs: list[Any] | None) -> tuple[bytes, dict[str, Any]]:
        s: Gap8Settings = self.settings  # type: ignore[assignment]
        data = export_onnx(model, example_input)
        if s.onnx_format == "float":
            return data, {"onnx_format": "float"}
        samples = list(calibration_inputs or [example_input])[: s.calibration_samples]
        info = {"onnx_format": "int8_qdq", "calibration_inputs": len(samples),
                "calibration_source": "given" if calibration_inputs else "example input only"}
        return gvsoc.qdq_onnx(data, [input_feed(x) for x in samples]), info

    def measure(self, model: Any, example_input: Any, *,
                calibration_inputs: list[Any] | None = None) -> LatencyResult:
        """``calibration_inputs``: a few real inputs (e.g. from the study's data) for the
        ``int8_qdq`` export's activation ranges; the example input alone otherwise."""
        s: Gap8Settings = self.settings  # type: ignore[assignment]
        example_input = with_input_shape(example_input, s.input_shape)
        graph = walk(model, example_input)
        est = estimate(graph, s.constants(), s.hardware())
        memory = {
            "params_bytes": float(est["params_bytes"]),
            "peak_activation_bytes": float(est["peak_activation_bytes"]),
            "fits_l2": 1.0 if est["fits_l2"] else 0.0,
        }
        if s.mode == "analytic":
            band = self._band()
            return LatencyResult(
                latency_ms=est["latency_ms"],
                samples_ms=[est["latency_ms"]],
                metrics={"cycles": float(est["cycles"]),
                         "latency_err_pct": float(band["latency_err_pct"]), **memory},
                details={
                    "mode": "analytic",
                    "uncertainty": band,
                    "macs": est["macs"],
                    "l3_bytes": est["l3_bytes"],
                    "constants": s.constants().to_dict(),
                    "n_layers": len(graph.layers),
                    "bound_counts": _count(p["bound"] for p in est["per_layer"]),
                    **self._layers([
                        {**layer.to_dict(), **cost}
                        for layer, cost in zip(graph.layers, est["per_layer"], strict=True)
                    ]),
                },
            )
        assert s.command is not None  # the settings validator guarantees it
        onnx_bytes, export = self._onnx(model, example_input, calibration_inputs)
        sim, output = gvsoc.run_simulator(
            s.command, onnx_bytes, timeout_s=s.timeout_s, cluster_mhz=s.cluster_mhz,
        )
        latency = sim.total_cycles / (s.cluster_mhz * 1e3)
        return LatencyResult(
            latency_ms=latency,
            samples_ms=[latency],
            metrics={"cycles": float(sim.total_cycles), "latency_err_pct": GVSOC_ERR_PCT,
                     **memory},
            details={
                "mode": "gvsoc",
                **export,
                "uncertainty": {"latency_err_pct": GVSOC_ERR_PCT,
                                "basis": "GVSOC vs silicon, 'typically under 10%' (arXiv "
                                         "2201.08166, shared/data/gap8/README.md)"},
                "operations": sim.total_operations,
                "n_layers": len(sim.layers),
                **self._layers(sim.layers),
                "analytic_latency_ms": est["latency_ms"],
                "output_tail": gvsoc.tail(output, 5),
            },
        )
