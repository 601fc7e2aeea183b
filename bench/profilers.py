"""Benchmark the device profilers; prints one JSON document.

- repeatability: coefficient of variation of the reported latency over 10 measurements of the
  same subnet, torch-cpu and onnxruntime-cpu, for the shipped method, the same with the
  reference recalibrated before each run (as separate processes would), the raw minimum and the
  method before (wall clock, median); as the host is and with ``--load N`` busy-loop processes
  competing (target < 5%); with the time spent measuring per subnet;
- gap8: the analytic model's error on each calibration row (evaluators/profilers/gap8/
  calibration.csv, shipped constants), leave-one-out and leave-one-family-out errors (targets:
  leave-one-out MAPE <= 10%, no row worse than 20%), the constants with their bounds, the time
  per subnet, and the GVSOC hook's overhead (float and int8 QDQ export);
- gap8_deeplab: the model's latency of the smallest and largest subnet of the default
  DeepLabV3+ space, with the shares spent in the backbone, ASPP, decoder and in upsampling;
- latency_table: the per-layer lookup-table predictor against measured torch-cpu latency on
  held-out random DeepLabV3+ subnets (target: within +-10% for 90% of subnets), raw and
  calibrated by least squares on separate calibration subnets.

Run: ``python bench/profilers.py [--quick] [--load N] [--only SECTION]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _space(quick: bool) -> Any:
    from search_spaces.deeplabv3plus.space import DeepLabSpace

    return DeepLabSpace({
        "width_mult": 0.35, "resolutions": [64, 96, 128] if not quick else [64, 96],
        "aspp_channels": 32, "decoder_channels": 32, "low_level_channels": 16,
    })


def _subnets(space: Any, n: int, seed: int) -> list[tuple[dict, Any, Any]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        arch = space.sample(rng)
        out.append((arch.to_dict(), space.extract(arch).eval(), space.example_input(arch)))
    return out


@contextlib.contextmanager
def competing_load(n: int) -> Iterator[None]:
    """``n`` busy-loop processes competing for the CPUs for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


#: methods compared (clock auto = thread-CPU with one thread): the reference ratio, the same
#: with the reference recalibrated before every run (as separate processes would), the raw
#: minimum, and the method before (wall clock, median of 15 samples of >= 5 ms)
VARIANTS: dict[str, dict[str, Any]] = {
    "reference": {"method": "reference"},
    "reference,recalibrated": {"method": "reference"},
    "min": {"method": "min"},
    "old(wall,median)": {"clock": "wall", "method": "median", "repeats": 15,
                         "min_sample_ms": 5.0},
}


def repeatability(space: Any, runs: int, load: int) -> dict[str, Any]:
    from evaluators.profilers.onnxruntime_cpu import OnnxRuntimeCpuProfiler
    from evaluators.profilers.reference import forget_calibrations
    from evaluators.profilers.torch_cpu import TorchCpuProfiler

    _, model, x = _subnets(space, 1, seed=7)[0]
    out: dict[str, Any] = {
        "runs": runs, "target_cv_pct": 5.0,
        "cv": "of the reported latency over the runs of the same subnet",
        "default_method": {cls.name: cls().settings.method
                           for cls in (TorchCpuProfiler, OnnxRuntimeCpuProfiler)},
    }
    for condition, n_busy in [("as_is", 0), (f"with_{load}_busy_loops", load)][: 1 + (load > 0)]:
        rows: dict[str, Any] = {}
        with competing_load(n_busy):
            forget_calibrations()
            for cls in (TorchCpuProfiler, OnnxRuntimeCpuProfiler):
                for variant, settings in VARIANTS.items():
                    profiler = cls(settings)
                    results, seconds = [], []
                    for _ in range(runs):
                        if variant.endswith("recalibrated"):
                            forget_calibrations()
                        t0 = time.perf_counter()
                        results.append(profiler.measure(model, x))
                        seconds.append(time.perf_counter() - t0)
                    rows[f"{cls.name}/{variant}"] = _repeat_row(results, seconds)
        out[condition] = {"load_avg_1m": round(os.getloadavg()[0], 2), **rows}
    return out


def _repeat_row(results: list[Any], seconds: list[float]) -> dict[str, Any]:
    reported = [r.latency_ms for r in results]
    details = results[0].details
    row = {
        "clock": details["clock"], "method": details["method"],
        "latency_ms_median": round(statistics.median(reported), 4),
        "latency_ms_range": [round(min(reported), 4), round(max(reported), 4)],
        "cv_pct": round(100 * statistics.pstdev(reported) / statistics.fmean(reported), 2),
        "samples_median": statistics.median(r.details["samples"] for r in results),
        "running_fraction_median": round(statistics.median(
            r.details["running_fraction"] for r in results), 4),
        "seconds_per_measure_median": round(statistics.median(seconds), 3),
    }
    if "raw" in details:
        raw_min = [r.details["raw"]["min_ms"] for r in results]
        nominal = [r.details["reference_nominal_ms"] for r in results]
        row["raw_min_cv_pct"] = round(100 * statistics.pstdev(raw_min)
                                      / statistics.fmean(raw_min), 2)
        row["reference_nominal_ms_range"] = [round(min(nominal), 4), round(max(nominal), 4)]
    return row


def gap8(space: Any, n: int) -> dict[str, Any]:
    from evaluators.profilers.gap8 import calibrate
    from evaluators.profilers.gap8.model import FITTED
    from evaluators.profilers.gap8.profiler import Gap8Profiler

    if not calibrate.DEFAULT_CSV.is_file():
        return {"skipped": f"GAP8 calibration data not found at {calibrate.DEFAULT_CSV}"}
    rows = calibrate.load_rows()
    report = calibrate.report(rows, FITTED)
    report["targets"] = {"loo_mape_pct": 10.0, "loo_max_abs_pct": 20.0}
    profiler, seconds = Gap8Profiler(), []
    for _, model, x in _subnets(space, n, seed=3):
        t0 = time.perf_counter()
        profiler.measure(model, x)
        seconds.append(time.perf_counter() - t0)
    report["seconds_per_subnet_median"] = round(statistics.median(seconds), 3)
    # the GVSOC hook's own cost (ONNX export, temp dir, process, parsing) with the fake
    # simulator from the tests: a real flow adds the SDK build and the simulation itself
    fixtures = Path(__file__).resolve().parents[1] / "tests/evaluators/profilers/fixtures"
    fake = fixtures / "fake_gvsoc.py"
    hook = Gap8Profiler({"mode": "gvsoc", "command": [sys.executable, str(fake), "{onnx}"]})
    hook_s = []
    for _, model, x in _subnets(space, n, seed=3):
        t0 = time.perf_counter()
        hook.measure(model, x)
        hook_s.append(time.perf_counter() - t0)
    report["gvsoc_hook_overhead_seconds_median"] = round(statistics.median(hook_s), 3)
    int8 = Gap8Profiler({"mode": "gvsoc", "command": [sys.executable, str(fake), "{onnx}"],
                         "onnx_format": "int8_qdq", "calibration_samples": 4})
    int8_s = []
    for _, model, x in _subnets(space, n, seed=3):
        t0 = time.perf_counter()
        int8.measure(model, x, calibration_inputs=[x + 0.1 * i for i in range(4)])
        int8_s.append(time.perf_counter() - t0)
    report["gvsoc_hook_int8_qdq_overhead_seconds_median"] = round(statistics.median(int8_s), 3)
    return report


def _part(layer: Any) -> str:
    """Which part of DeepLabV3+ a walked layer belongs to (by the module it ran in)."""
    module = layer.detail.get("module", "")
    if module.startswith("backbone"):
        return "backbone"
    if module.startswith("classifier.aspp"):
        return "aspp"
    return "decoder"  # low-level projection, ASPP upsampling, concat, classifier, final upsample


def gap8_deeplab() -> dict[str, Any]:
    """The analytic GAP8 latency of the default DeepLabV3+ space's extremes and where it goes."""
    from evaluators.profilers.gap8.graph import walk
    from evaluators.profilers.gap8.model import FITTED, OUT_OF_SAMPLE, Gap8Hardware, estimate
    from search_spaces.deeplabv3plus.space import DeepLabSpace

    space = DeepLabSpace()  # the default options
    out: dict[str, Any] = {}
    for which in ("smallest", "largest"):
        arch = getattr(space, which)()
        graph = walk(space.build_static(arch).eval(), space.example_input(arch))
        est = estimate(graph, FITTED, Gap8Hardware())
        total = est["cycles"]
        parts: dict[str, float] = {}
        resize = 0.0
        for layer, cost in zip(graph.layers, est["per_layer"], strict=True):
            parts[_part(layer)] = parts.get(_part(layer), 0.0) + cost["cycles"]
            if layer.kind == "resize":
                resize += cost["cycles"]
        out[which] = {
            "arch": arch.to_dict(),
            "gmac": round(graph.macs / 1e9, 2),
            "params_mb_int8": round(graph.params_bytes / 1e6, 2),
            "peak_activation_mb_int8": round(graph.peak_activation_bytes / 1e6, 2),
            "latency_ms": round(est["latency_ms"], 1),
            "latency_err_pct_out_of_sample": OUT_OF_SAMPLE["loo_mape_pct"],
            "share_pct": {k: round(100 * v / total, 1) for k, v in sorted(parts.items())},
            "upsampling_share_pct": round(100 * resize / total, 1),
            "l3_mb": round(est["l3_bytes"] / 1e6, 1),
            "bound_counts": {b: sum(p["bound"] == b for p in est["per_layer"])
                             for b in ("compute", "dma", "l3")},
        }
    out["note"] = ("model estimate, not a measurement; DeepLabV3+ subnets are 1-2 orders of "
                   "magnitude larger than the calibration nets, so the band is a lower bound")
    return out


def latency_table(space: Any, n_ref: int, n_eval: int, rounds: int = 3) -> dict[str, Any]:
    from evaluators.profilers.latency_table import LatencyTable
    from evaluators.profilers.torch_cpu import TorchCpuProfiler

    # the shipped ``cpu`` device's settings (threads 1, clock auto, method reference)
    profiler, table = TorchCpuProfiler({"threads": 1}), LatencyTable({"threads": 1})
    refs = _subnets(space, n_ref, seed=11)
    ref_keys = {json.dumps(arch, sort_keys=True) for arch, _, _ in refs}
    # held out: no evaluation subnet is one of the calibration subnets
    evals = [s for s in _subnets(space, n_eval, seed=23)
             if json.dumps(s[0], sort_keys=True) not in ref_keys]
    # ground truth: the median of ``rounds`` measurements, taken round-robin over all subnets
    # so that a slow period of the host falls on calibration and evaluation subnets alike
    everyone = refs + evals
    measured: list[list[float]] = [[] for _ in everyone]
    measure_s: list[float] = []
    for _ in range(rounds):
        for i, (_, model, x) in enumerate(everyone):
            t0 = time.perf_counter()
            measured[i].append(profiler.measure(model, x).latency_ms)
            measure_s.append(time.perf_counter() - t0)
    truth = [statistics.median(m) for m in measured]
    spread = [(max(m) - min(m)) / statistics.median(m) for m in measured]

    t0 = time.perf_counter()
    ref_preds = [table.predict(model, x) for _, model, x in refs]
    constants = table.calibrate_from(list(zip(ref_preds, truth[:n_ref], strict=True)))
    calibration_s = time.perf_counter() - t0
    fit_err = [(table.scale * p.raw_ms + table.per_call_ms * (p.n_ops + p.n_containers)) / m - 1
               for p, m in zip(ref_preds, truth[:n_ref], strict=True)]

    per_subnet, raw_err, cal_err, predict_s = [], [], [], []
    for (arch, model, x), true_ms in zip(evals, truth[n_ref:], strict=True):
        pred = table.predict(model, x)
        predict_s.append(pred.measuring_s)
        raw_err.append(pred.raw_ms / true_ms - 1)
        cal_err.append(pred.latency_ms / true_ms - 1)
        per_subnet.append({
            "resolution": arch["resolution"], "measured_ms": round(true_ms, 3),
            "predicted_ms": round(pred.latency_ms, 3), "raw_sum_ms": round(pred.raw_ms, 3),
            "error_pct": round(100 * cal_err[-1], 1), "new_table_entries": pred.new_entries,
        })

    def summary(errors: list[float]) -> dict[str, float]:
        return {
            "within_10pct": round(sum(abs(e) <= 0.10 for e in errors) / len(errors), 3),
            "mape_pct": round(100 * statistics.fmean(abs(e) for e in errors), 2),
            "median_error_pct": round(100 * statistics.median(errors), 2),
            "max_abs_error_pct": round(100 * max(abs(e) for e in errors), 1),
        }

    return {
        "device": {"kind": "torch-cpu", "settings": "defaults (threads 1, method reference)"},
        "measured": f"median of {rounds} torch-cpu measurements taken round-robin",
        "measured_spread_pct_median": round(100 * statistics.median(spread), 1),
        "n_calibration_subnets": n_ref,
        "n_eval_subnets_held_out": len(evals),
        "calibration": {**{k: round(v, 5) for k, v in constants.items()},
                        "fit_mape_pct_on_calibration_subnets": round(
                            100 * statistics.fmean(abs(e) for e in fit_err), 2),
                        "seconds": round(calibration_s, 2)},
        "held_out_raw_sum": summary(raw_err),
        "held_out_calibrated": summary(cal_err),
        "target": "within +-10% for 90% of held-out subnets",
        "table_entries": len(table.entries),
        "seconds_per_measurement_median": round(statistics.median(measure_s), 3),
        "seconds_predict_median": round(statistics.median(predict_s), 3),
        "seconds_predict_max": round(max(predict_s), 3),
        "per_subnet": per_subnet,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="device profiler figures (JSON)")
    parser.add_argument("--quick", action="store_true", help="fewer subnets and runs")
    parser.add_argument("--only",
                        choices=["repeatability", "gap8", "gap8_deeplab", "latency_table"])
    parser.add_argument("--load", type=int, default=2, metavar="N",
                        help="repeatability is also measured with N busy-loop processes "
                             "competing for the CPUs (default 2; 0: only as the host is)")
    args = parser.parse_args()
    import logging

    import torch

    logging.basicConfig(level=logging.ERROR)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    space = _space(args.quick)
    out: dict[str, Any] = {
        "host": {"cpus": os.cpu_count(), "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
                 "torch": torch.__version__},
    }
    t0 = time.perf_counter()
    if args.only in (None, "repeatability"):
        if not 0 <= args.load <= 64:
            parser.error(f"--load must be 0..64 busy loops, got {args.load}")
        out["repeatability"] = repeatability(space, runs=10, load=args.load)
    if args.only in (None, "gap8"):
        out["gap8"] = gap8(space, n=3 if args.quick else 8)
    if args.only in (None, "gap8_deeplab"):
        out["gap8_deeplab"] = gap8_deeplab()
    if args.only in (None, "latency_table"):
        out["latency_table"] = latency_table(space, n_ref=4 if args.quick else 10,
                                             n_eval=8 if args.quick else 30)
    out["host"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
