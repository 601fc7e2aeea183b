"""Fit the GAP8 model's global constants to GreenWaves' published latencies.

``python -m evaluators.profilers.gap8.calibrate [--csv PATH]`` prints the fitted constants, the
error on every calibration row and the leave-one-out error (each row predicted by constants
fitted on the others), as JSON. Paste the constants into ``model.FITTED``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators.profilers.gap8.graph import Graph, walk
from evaluators.profilers.gap8.model import Gap8Constants, Gap8Hardware, estimate
from evaluators.profilers.gap8.reference_nets import build

#: where shared benchmark data lives: PARETONAS_SHARED_DATA, else ../shared/data from the repo
SHARED_DATA = Path(
    os.environ.get("PARETONAS_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared/data")
)
DEFAULT_CSV = SHARED_DATA / "gap8" / "published_latency.csv"
_FIELDS = ("model", "width_mult", "input_res", "mmac", "params_M", "latency_ms")
#: published flow's clocks (README: chip rev C, cluster 175 MHz)
PUBLISHED_HW = Gap8Hardware(cluster_mhz=175.0, l2_budget_bytes=350 * 1024)


@dataclass
class Row:
    model: str
    width_mult: float
    input_res: int
    mmac: float
    params_m: float
    latency_ms: float
    graph: Graph | None = None

    @property
    def label(self) -> str:
        return f"{self.model}@{self.width_mult}x{self.input_res}"


def load_rows(path: Path = DEFAULT_CSV) -> list[Row]:
    """Read and validate the calibration CSV."""
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
                rows.append(Row(raw["model"], float(raw["width_mult"]), int(raw["input_res"]),
                                float(raw["mmac"]), float(raw["params_M"]),
                                float(raw["latency_ms"])))
            except ValueError as exc:
                raise ValueError(f"{path}:{i}: {exc}") from exc
    return rows


def walk_rows(rows: list[Row]) -> list[Row]:
    import torch

    for row in rows:
        if row.graph is None:
            model = build(row.model, row.width_mult)
            row.graph = walk(model, torch.zeros(1, 3, row.input_res, row.input_res))
    return rows


def _unpack(x: Any) -> Gap8Constants:
    return Gap8Constants(*(math.exp(v) for v in x))


def fit(rows: list[Row], hw: Gap8Hardware = PUBLISHED_HW) -> Gap8Constants:
    """Least squares on log(predicted / published) over the rows, constants in log space."""
    import numpy as np
    from scipy.optimize import least_squares

    walk_rows(rows)

    def residuals(x: Any) -> Any:
        c = _unpack(x)
        return np.array([
            math.log(estimate(r.graph, c, hw)["latency_ms"] / r.latency_ms) for r in rows
        ])

    # start from the README's figures; bounds keep constants physical: dense layers at most the
    # 32 MAC/cycle SIMD peak, depthwise at most half of it (no reuse across input channels)
    x0 = np.log([10.0, 3.0, 50.0, 10_000.0])
    lo, hi = np.log([1.0, 0.5, 5.0, 10.0]), np.log([32.0, 16.0, 400.0, 500_000.0])
    return _unpack(least_squares(residuals, x0, bounds=(lo, hi)).x)


def report(rows: list[Row], constants: Gap8Constants, hw: Gap8Hardware = PUBLISHED_HW) -> dict:
    """Per-row predictions and errors, MAPE, and leave-one-out errors."""
    walk_rows(rows)
    out_rows, loo_errors = [], []
    for i, row in enumerate(rows):
        est = estimate(row.graph, constants, hw)
        others = rows[:i] + rows[i + 1:]
        loo = estimate(row.graph, fit(others, hw), hw)["latency_ms"] if len(others) >= 4 else None
        err = est["latency_ms"] / row.latency_ms - 1
        item = {
            "row": row.label,
            "published_ms": row.latency_ms,
            "predicted_ms": round(est["latency_ms"], 2),
            "error_pct": round(100 * err, 2),
            "walked_mmac": round(row.graph.macs / 1e6, 1),
            "published_mmac": row.mmac,
        }
        if loo is not None:
            item["loo_error_pct"] = round(100 * (loo / row.latency_ms - 1), 2)
            loo_errors.append(abs(loo / row.latency_ms - 1))
        out_rows.append(item)
    return {
        "constants": constants.to_dict(),
        "rows": out_rows,
        "mape_pct": round(100 * sum(abs(r["error_pct"]) / 100 for r in out_rows) / len(rows), 2),
        "loo_mape_pct": round(100 * sum(loo_errors) / len(loo_errors), 2) if loo_errors else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args(argv)
    rows = load_rows(args.csv)
    constants = fit(rows)
    print(json.dumps(report(rows, constants), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
