"""Fit the GAP8 model's global constants to published GAP8 latencies and measure its error
out of sample.

``python -m evaluators.profilers.gap8.calibrate [--csv PATH]`` prints, as JSON: the fitted
constants with their bounds, every calibration row's in-sample error, its leave-one-out error
(predicted by constants fitted on all other rows) and its leave-one-family-out error (fitted
with every row of its family held out, e.g. all MobileNetV2s), and the summaries. Paste
``constants`` into ``model.FITTED`` and ``out_of_sample`` into ``model.OUT_OF_SAMPLE``.

The calibration rows live in ``calibration.csv`` next to this file, each with its source (the
published table and entry it was read from).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators.profilers.gap8.graph import Graph, walk
from evaluators.profilers.gap8.model import (
    BOUNDS,
    Gap8Constants,
    Gap8Hardware,
    layer_terms,
    log_bounds,
    total_cycles,
)
from evaluators.profilers.gap8.reference_nets import build

DEFAULT_CSV = Path(__file__).with_name("calibration.csv")
#: the project's copy of GreenWaves' five headline rows (shared/data/gap8), cross-checked
SHARED_DATA = Path(
    os.environ.get("PARETONAS_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared/data")
)
SHARED_CSV = SHARED_DATA / "gap8" / "published_latency.csv"
_FIELDS = ("net", "family", "width_mult", "input_shape", "latency_ms", "cluster_mhz", "source")
#: the published flow's L2 budget (GreenWaves' READMEs: L2 memory used = 350 kB)
L2_BUDGET = 350 * 1024


@dataclass
class Row:
    net: str
    family: str
    width_mult: float
    input_shape: tuple[int, ...]
    latency_ms: float
    cluster_mhz: float
    source: str
    published_mmac: float | None = None
    graph: Graph | None = None
    terms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        res = "x".join(str(s) for s in self.input_shape[2:])
        return f"{self.net}@{self.width_mult:g}x{res}"

    @property
    def hw(self) -> Gap8Hardware:
        return Gap8Hardware(self.cluster_mhz, L2_BUDGET)


def load_rows(path: Path = DEFAULT_CSV) -> list[Row]:
    """Read and validate the calibration CSV (every row must name its source)."""
    if not path.is_file():
        raise FileNotFoundError(f"GAP8 calibration data not found at {path}")
    rows = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [f for f in _FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; required: {list(_FIELDS)}")
        for i, raw in enumerate(reader, start=2):
            try:
                if not raw["source"].strip():
                    raise ValueError("empty 'source': every row must say where it was published")
                shape = tuple(int(s) for s in raw["input_shape"].split("x"))
                if len(shape) != 4:
                    raise ValueError(f"input_shape {raw['input_shape']!r} is not NxCxHxW")
                mmac = raw.get("published_mmac") or ""
                rows.append(Row(raw["net"], raw["family"], float(raw["width_mult"]), shape,
                                float(raw["latency_ms"]), float(raw["cluster_mhz"]),
                                raw["source"].strip(), float(mmac) if mmac else None))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{i}: {exc}") from exc
    return rows


def walk_rows(rows: list[Row]) -> list[Row]:
    import torch

    for row in rows:
        if row.graph is None:
            row.graph = walk(build(row.net, row.width_mult), torch.zeros(*row.input_shape))
            row.terms = layer_terms(row.graph, row.hw)
    return rows


def predict_ms(row: Row, c: Gap8Constants) -> float:
    return total_cycles(row.terms, c, row.hw) / (row.cluster_mhz * 1e3)


#: constants fitted; eta_depthwise is tied to eta_dense: with the per-output and per-pass terms
#: the published nets cannot tell the two inner-loop rates apart (fitted freely it lands on
#: eta_dense's value, 15.44, with leave-one-out 7.32% instead of 7.25%), and one MAC rate for
#: every convolution loop is the physical reading
FREE = [n for n in Gap8Constants.names() if n != "eta_depthwise"]


def _unpack(x: Any) -> Gap8Constants:
    values = {n: math.exp(v) for n, v in zip(FREE, x, strict=True)}
    return Gap8Constants(**values, eta_depthwise=values["eta_dense"])


_START = {"eta_dense": 10.0, "eta_depthwise": 4.0, "out_cycles": 4.0, "l3_mb_s": 50.0,
          "layer_overhead_cycles": 3_000.0, "pass_cycles": 20.0}


def fit(rows: list[Row]) -> Gap8Constants:
    """Least squares on log(predicted / published) over the rows, constants in log space and
    inside ``model.BOUNDS``."""
    import numpy as np
    from scipy.optimize import least_squares

    walk_rows(rows)

    def residuals(x: Any) -> Any:
        c = _unpack(x)
        return np.array([math.log(predict_ms(r, c) / r.latency_ms) for r in rows])

    lo, hi = log_bounds(FREE)
    # start from mid-range physical figures (shared/data/gap8/README.md, the bounds' sources)
    x0 = np.log([_START[n] for n in FREE])
    return _unpack(least_squares(residuals, x0, bounds=(lo, hi), x_scale=1.0).x)


def _pct(pred: float, published: float) -> float:
    return 100 * (pred / published - 1)


def out_of_sample(
    rows: list[Row], folds: list[Gap8Constants] | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Leave-one-out and leave-one-family-out errors (%) per row label; ``folds`` (if given)
    receives the leave-one-out fits' constants."""
    walk_rows(rows)
    loo, lofo = {}, {}
    for i, row in enumerate(rows):
        c = fit(rows[:i] + rows[i + 1:])
        loo[row.label] = _pct(predict_ms(row, c), row.latency_ms)
        if folds is not None:
            folds.append(c)
    for family in dict.fromkeys(r.family for r in rows):
        rest = [r for r in rows if r.family != family]
        c = fit(rest)
        for row in rows:
            if row.family == family:
                lofo[row.label] = _pct(predict_ms(row, c), row.latency_ms)
    return loo, lofo


def _summary(errors: list[float]) -> dict[str, float]:
    return {"mape_pct": round(sum(abs(e) for e in errors) / len(errors), 2),
            "max_abs_pct": round(max(abs(e) for e in errors), 2)}


def _at_bound(c: Gap8Constants) -> list[str]:
    out = []
    for name, value in c.to_dict().items():
        if name not in FREE:
            continue
        lo, hi, _ = BOUNDS[name]
        if value <= lo * 1.001 or value >= hi * 0.999:
            out.append(name)
    return out


def report(rows: list[Row], constants: Gap8Constants | None = None) -> dict[str, Any]:
    """The fit, per-row in-sample / leave-one-out / leave-one-family-out errors, summaries."""
    walk_rows(rows)
    constants = constants or fit(rows)
    folds: list[Gap8Constants] = []
    loo, lofo = out_of_sample(rows, folds)
    out_rows = []
    for row in rows:
        pred = predict_ms(row, constants)
        out_rows.append({
            "row": row.label, "family": row.family,
            "published_ms": row.latency_ms, "predicted_ms": round(pred, 2),
            "error_pct": round(_pct(pred, row.latency_ms), 2),
            "loo_error_pct": round(loo[row.label], 2),
            "lofo_error_pct": round(lofo[row.label], 2),
            "walked_mmac": round(row.graph.macs / 1e6, 1),  # type: ignore[union-attr]
            "published_mmac": row.published_mmac,
            "source": row.source,
        })
    families: dict[str, list[float]] = {}
    for row in rows:
        families.setdefault(row.family, []).append(lofo[row.label])
    loo_s, lofo_s = _summary(list(loo.values())), _summary(list(lofo.values()))
    return {
        "constants": {k: round(v, 4) for k, v in constants.to_dict().items()},
        "bounds": {k: {"low": lo, "high": hi, "why": why} for k, (lo, hi, why) in BOUNDS.items()},
        "fitted": FREE,
        "tied": {"eta_depthwise": "eta_dense"},
        "constants_at_bounds": _at_bound(constants),
        # how far each constant moves when one row is left out, and which folds end on a bound
        "loo_constants_range": {n: [round(min(getattr(c, n) for c in folds), 3),
                                    round(max(getattr(c, n) for c in folds), 3)] for n in FREE},
        "loo_folds_at_bounds": {r.label: b for r, c in zip(rows, folds, strict=True)
                                if (b := _at_bound(c))},
        "n_rows": len(rows),
        "n_families": len(families),
        "in_sample": _summary([r["error_pct"] for r in out_rows]),
        "leave_one_out": loo_s,
        "leave_one_family_out": {**lofo_s, "per_family_mape_pct": {
            f: _summary(e)["mape_pct"] for f, e in families.items()}},
        "out_of_sample": {"loo_mape_pct": loo_s["mape_pct"],
                          "loo_max_abs_pct": loo_s["max_abs_pct"],
                          "lofo_mape_pct": lofo_s["mape_pct"], "n_rows": len(rows)},
        "rows": out_rows,
        "shared_csv_check": shared_csv_check(rows),
        "independent_check": kernel_benchmark_check(constants),
    }


#: GreenWaves' GAP8 CNN benchmark (gap_sdk benchmarks/gap8/cnn/README.md, "Parallel Vector",
#: GAPuino, cluster 175 MHz): a 5x5 byte convolution of a 112x112 image with 100 output filters,
#: 2,281,309 cycles, i.e. 12.8 MAC/cycle. Not in the fit (nor a source of a fixed constant).
BENCH_5X5 = {"cycles": 2_281_309, "in": (1, 1, 112, 112), "out_channels": 100, "kernel": 5}


def kernel_benchmark_check(constants: Gap8Constants) -> dict[str, Any]:
    """The fitted kernel terms against a published single-kernel figure they were not fitted on
    (compute cycles only: the benchmark's data sits in L1, no tiling or layer set-up)."""
    import torch
    from torch import nn

    from evaluators.profilers.gap8.model import estimate

    conv = nn.Conv2d(1, BENCH_5X5["out_channels"], BENCH_5X5["kernel"], bias=False).eval()
    graph = walk(conv, torch.zeros(*BENCH_5X5["in"]))
    model_cycles = estimate(graph, constants, Gap8Hardware())["per_layer"][0]["compute_cycles"]
    return {
        "what": "5x5 conv, 112x112 image, 100 filters (gap_sdk benchmarks/gap8/cnn README)",
        "published_mac_per_cycle": round(graph.macs / BENCH_5X5["cycles"], 2),
        "model_mac_per_cycle": round(graph.macs / model_cycles, 2),
        "error_pct": round(_pct(model_cycles, BENCH_5X5["cycles"]), 1),
    }


def shared_csv_check(rows: list[Row], path: Path = SHARED_CSV) -> dict[str, Any]:
    """Whether the project's shared copy of GreenWaves' headline rows agrees with ours."""
    if not path.is_file():
        return {"skipped": f"{path} not found"}
    ours = {(r.net, r.width_mult, r.input_shape[-1]): r.latency_ms for r in rows}
    mismatches, matched = [], 0
    with path.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            key = (raw["model"], float(raw["width_mult"]), int(raw["input_res"]))
            if key in ours:
                matched += 1
                if abs(ours[key] / float(raw["latency_ms"]) - 1) > 0.01:
                    mismatches.append({"row": key, "ours": ours[key],
                                       "shared": float(raw["latency_ms"])})
    return {"matched_rows": matched, "mismatches": mismatches}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args(argv)
    try:
        rows = load_rows(args.csv)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report(rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
