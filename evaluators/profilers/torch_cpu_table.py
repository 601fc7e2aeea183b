"""``torch-cpu-table``: torch-cpu latency *predicted* from a per-layer lookup table.

The first ``reference_subnets`` subnets a process sees are measured for real (torch-cpu, same
timing settings) and calibrate the table's scale and per-lookup overhead; later subnets are
predicted by summing table entries, measuring only layers not seen before. Much cheaper than
measuring when a search revisits the same layer shapes. ``table_path`` (config file only)
persists the table.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from evaluators.profilers.base import LatencyResult, Profiler, ProfilerSettings, settings_hash
from evaluators.profilers.latency_table import LatencyTable, Prediction
from evaluators.profilers.timing import TimedSettings, with_input_shape
from evaluators.profilers.torch_cpu import SINGLE_CALLS, TorchCpuProfiler


class TableSettings(TimedSettings):
    min_sample_ms: float = Field(default=0.0, ge=0, le=10_000, description=SINGLE_CALLS)
    batch: int = Field(default=1, ge=1, le=1, description="the table keys recorded shapes")
    reference_subnets: int = Field(
        default=5, ge=2, le=1000, description="first subnets measured for real to calibrate"
    )
    table_path: str | None = Field(default=None, description="JSON file to keep the table in")


class _State:
    """One table per (settings) per process, plus its calibration references."""

    def __init__(self, table: LatencyTable):
        self.table = table
        self.references: list[tuple[Prediction, float]] = []
        self.lock = threading.Lock()


class TorchCpuTableProfiler(Profiler):
    """Lookup-table prediction of torch-cpu latency, calibrated on a few real measurements."""

    name: ClassVar[str] = "torch-cpu-table"
    version: ClassVar[str] = "2"
    Settings: ClassVar[type[ProfilerSettings]] = TableSettings
    config_only_settings: ClassVar[frozenset[str]] = frozenset({"table_path"})
    _states: ClassVar[dict[str, _State]] = {}
    _states_lock: ClassVar[threading.Lock] = threading.Lock()

    def _timing(self) -> dict[str, Any]:
        return self.settings.model_dump(
            include=set(TimedSettings.model_fields) - {"batch", "input_shape"}
        )

    def _state(self) -> _State:
        s: TableSettings = self.settings  # type: ignore[assignment]
        key = settings_hash(s.model_dump())
        with self._states_lock:
            if key not in self._states:
                path = Path(s.table_path) if s.table_path else None
                if path is not None and path.is_file():
                    table = LatencyTable.load(path)
                    table.settings = LatencyTable(self._timing()).settings
                else:
                    table = LatencyTable(self._timing())
                self._states[key] = _State(table)
            return self._states[key]

    def measure(self, model: Any, example_input: Any) -> LatencyResult:
        s: TableSettings = self.settings  # type: ignore[assignment]
        example_input = with_input_shape(example_input, s.input_shape)
        state = self._state()
        with state.lock:
            table = state.table
            prediction = table.predict(model, example_input)
            calibrated = len(state.references) >= s.reference_subnets
            if not calibrated:
                measured = TorchCpuProfiler(self._timing()).measure(model, example_input)
                state.references.append((prediction, measured.latency_ms))
                if len(state.references) >= 2:
                    table.calibrate_from(state.references)
                if s.table_path:
                    table.save(s.table_path)
                measured.details.update(source="measured (table reference)",
                                        table_entries=len(table.entries))
                return measured
            if s.table_path and prediction.new_entries:
                table.save(s.table_path)
        return LatencyResult(
            latency_ms=prediction.latency_ms,
            samples_ms=[prediction.latency_ms],
            details={
                "source": "table",
                "raw_sum_ms": prediction.raw_ms,
                "scale": table.scale,
                "per_call_ms": table.per_call_ms,
                "lookups": prediction.n_ops + prediction.n_containers,
                "new_entries": prediction.new_entries,
                "table_entries": len(table.entries),
                "seconds_measuring_layers": prediction.measuring_s,
            },
        )
