"""The GVSOC hook: run a user's GAP SDK flow on an exported subnet and parse its cycle counts.

The command comes from the server config file only (never from a request); it runs in a fresh
temporary directory holding ``model.onnx``, in its own process group, with a timeout. The flow's
generated program prints one line per layer and a total (``shared/data/gap8/README.md``)::

    <layer>: Cycles: <n>, Cyc%: <p>%, Operations: <n>, Op%: <p>%, Operations/Cycle: <f>
    Total: Cycles: <n>, Cyc%: 100.0%, Operations: <n>, ...

(older SDKs omit ``Cyc%``/``Op%``).

GAP8 runs int8: NNTool quantises a float graph with a calibration set, or reads a quantised one.
``qdq_onnx`` gives the flow a QDQ-quantised ONNX (int8 weights per output channel, int8
activations whose ranges are calibrated on a few real inputs) made with ONNX Runtime's
``quantize_static``.
"""

from __future__ import annotations

import os
import re
import signal
import string
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators.profilers.base import ProfilerError

#: placeholders a command template may use
PLACEHOLDERS = ("onnx", "workdir", "cluster_mhz")
TAIL_LINES = 20

_PERF = re.compile(
    r"^\s*(?P<name>[^\s:][^:]*?)\s*:\s*Cycles:\s*(?P<cycles>\d+)\s*,"
    r"(?:\s*Cyc%:\s*[-+.\deE]+\s*%\s*,)?"
    r"\s*Operations:\s*(?P<ops>\d+)"
)
_END = re.compile(r"Detected end of application, exiting with status:\s*(?P<status>-?\d+)")


def template_fields(command: list[str]) -> set[str]:
    """The placeholder names used in a command template (``{onnx}`` ...)."""
    names = set()
    for arg in command:
        for _, name, _, _ in string.Formatter().parse(arg):
            if name is not None:
                names.add(name)
    return names


def check_template(command: list[str]) -> list[str]:
    if not command:
        raise ValueError("command must not be empty")
    unknown = template_fields(command) - set(PLACEHOLDERS)
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {sorted(unknown)} in command; allowed: "
            + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        )
    return command


@dataclass
class SimResult:
    total_cycles: int
    total_operations: int
    layers: list[dict[str, Any]] = field(default_factory=list)
    exit_status: int | None = None


def tail(text: str, n: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def parse_output(text: str) -> SimResult:
    """Per-layer and total cycles from the simulator's output, or ProfilerError."""
    layers, total = [], None
    status = None
    for line in text.splitlines():
        end = _END.search(line)
        if end:
            status = int(end.group("status"))
            continue
        m = _PERF.match(line)
        if not m:
            continue
        item = {"name": m.group("name"), "cycles": int(m.group("cycles")),
                "operations": int(m.group("ops"))}
        if item["name"] == "Total":
            total = item
        else:
            layers.append(item)
    if status is not None and status != 0:
        raise ProfilerError(f"gvsoc: the application exited with status {status}:\n{tail(text)}")
    if total is None:
        raise ProfilerError(
            "gvsoc: no 'Total: Cycles: <n>, ... Operations: <n>' line in the simulator output; "
            f"last lines:\n{tail(text)}"
        )
    if total["cycles"] <= 0:
        raise ProfilerError(f"gvsoc: total cycles is {total['cycles']}; last lines:\n{tail(text)}")
    return SimResult(total["cycles"], total["operations"], layers, status)


def run_simulator(
    command: list[str], onnx_bytes: bytes, *, timeout_s: float, cluster_mhz: float
) -> tuple[SimResult, str]:
    """Run the command template on ``onnx_bytes`` in a temporary directory; parse the output."""
    with tempfile.TemporaryDirectory(prefix="paretonas-gvsoc-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        onnx_path.write_bytes(onnx_bytes)
        values = {"onnx": str(onnx_path), "workdir": tmp, "cluster_mhz": f"{cluster_mhz:g}"}
        argv = [arg.format(**values) for arg in command]
        try:
            # own process group so a timeout also ends make/gvsoc grandchildren
            proc = subprocess.Popen(
                argv, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, text=True, errors="replace",
            )
        except OSError as exc:
            raise ProfilerError(f"gvsoc: cannot start {argv[0]!r}: {exc}") from exc
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            raise ProfilerError(
                f"gvsoc: the simulator timed out after {timeout_s:g} s; last lines:\n{tail(out)}"
            ) from None
        if proc.returncode != 0:
            raise ProfilerError(
                f"gvsoc: the command exited with status {proc.returncode}; "
                f"last lines:\n{tail(out)}"
            )
        return parse_output(out), out


def qdq_onnx(float_onnx: bytes, inputs: list[dict[str, Any]]) -> bytes:
    """A QDQ int8 version of ``float_onnx``: symmetric int8 weights per channel, int8 activations
    with ranges calibrated (min/max) on ``inputs`` (each a graph-input name -> array feed)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not inputs:
        raise ProfilerError("int8 export: no calibration inputs")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(inputs)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(prefix="paretonas-qdq-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(float_onnx)
        try:
            quantize_static(
                str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
            )
        except Exception as exc:
            raise ProfilerError(f"int8 export: quantize_static failed: {exc}") from exc
        return dst.read_bytes()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
