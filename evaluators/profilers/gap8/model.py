"""A per-layer cycle model of int8 inference on GAP8's 8-core cluster (NNTool + AutoTiler flow).

For each deployed layer (``graph.py``), with the three memory levels double-buffered::

    cycles = layer_overhead + max(compute, L2<->L1 DMA, L3 HyperBus)

    compute = MACs / eta(kind) + out_elements * out_cycles / 8    conv, pointwise, depthwise
            = MACs / ETA_LINEAR                                     fully connected (weight-bound)
            = bytes touched / MEM_BYTES_PER_CYCLE                   pool, add, concat, resize...
    DMA     = (input + output + weight bytes) / DMA_BYTES_PER_CYCLE + DMA_SETUP_CYCLES
    L3      = bytes that live in L3 * f_cluster / l3 bandwidth

``out_cycles`` is the per-output work of a convolution kernel besides its MACs (bias, requantise
by a shift/scale, clip, store: a handful of instructions on one core, 8 cores in parallel). It is
what makes a depthwise layer (9 MACs per output) run at a fraction of a dense layer's MAC/cycle,
as PULP-NN and the AutoTiler's kernels report, with no separate fudge. Weights live in L3 when
the network (params + peak activations) does not fit the L2 budget; a layer's activations go
through L3 when its input and output together exceed that budget.

Fixed hardware figures (with sources) are the module constants below; four global constants
(``Gap8Constants``, eta_depthwise tied to eta_dense) are fitted by ``calibrate.py`` to published
GAP8 latencies (``calibration.csv``), inside bounds that keep each one physical (``BOUNDS``).
There are no per-model factors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from evaluators.profilers.gap8.graph import Graph

#: cluster DMA L2<->L1 bandwidth (bytes/cycle) and per-transfer setup (DORY's GAP8 description,
#: shared/data/gap8/README.md)
DMA_BYTES_PER_CYCLE = 8.0
DMA_SETUP_CYCLES = 10.0
#: fully connected layers read each int8 weight once (one MAC per weight byte): 7.3 MAC/cycle is
#: GreenWaves' parallel vectorised Linear benchmark on GAP8 (gap_sdk benchmarks/gap8/cnn
#: README: 1024x16 inputs x 100 iterations = 1.64 M MAC in 223,484 cycles)
ETA_LINEAR = 7.3
#: memory-bound layers (pooling, add, concat, resize, softmax/normalisation): bytes read + written
#: per cycle by the 8 cores; 4.4 B/cycle is GreenWaves' parallel vectorised 2x2/2 max pool
#: benchmark (same README: 112x112x100 bytes in + 56x56x100 out in 355,563 cycles)
MEM_BYTES_PER_CYCLE = 4.4
#: bilinear resize reads 4 neighbours per output element and writes one
RESIZE_READS_PER_OUTPUT = 4.0
#: normalisation and softmax touch each element a few times (max, sum, divide)
NORM_PASSES = 4.0
#: cores of the cluster
CORES = 8

_DENSE = ("conv", "pointwise", "matmul")


@dataclass(frozen=True)
class Gap8Constants:
    """The fitted global constants (values in ``FITTED``, bounds in ``BOUNDS``)."""

    eta_dense: float  # MAC/cycle of the inner loop of standard, pointwise convs and matmuls
    eta_depthwise: float  # MAC/cycle of the inner loop of depthwise convolutions
    out_cycles: float  # cycles per output element on one core (bias, requantise, clip, store)
    l3_mb_s: float  # effective HyperBus bandwidth, MB/s
    layer_overhead_cycles: float  # per-layer fixed cost (tiling setup, cluster fork/join)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


#: plausible ranges, each with why (the fit may not leave them)
BOUNDS: dict[str, tuple[float, float, str]] = {
    "eta_dense": (4.0, 15.5, "PULP-NN's best int8 conv on 8 cores is 15.5 MAC/cycle "
                             "(Garofalo et al. 2020); GreenWaves' 5x5 conv benchmark 12.8"),
    "eta_depthwise": (1.0, 15.5, "same sdotp loop as dense; tied to eta_dense by the fit"),
    "out_cycles": (0.5, 30.0, "a requantise + clip + store is a handful of RI5CY instructions"),
    "l3_mb_s": (10.0, 200.0, "HyperBus 8-bit DDR; ~50 MB/s is GreenWaves' 'ideal' figure"),
    "layer_overhead_cycles": (100.0, 50_000.0, "cluster fork/join + tiler setup per layer"),
}

#: Least-squares fit (log-ratio residuals) on calibration.csv; regenerate with
#: ``python -m evaluators.profilers.gap8.calibrate`` and paste the ``constants``. No constant ends
#: on a bound. eta_depthwise is tied to eta_dense (one sdotp inner loop); the per-output work
#: (out_cycles) is what makes a 3x3 depthwise layer slower per MAC: ~6.0 MAC/cycle overall
#: against ~7.1 for a 64-deep pointwise layer and ~7.3 for a 512-deep one (full SIMD lanes).
#: The dense rate sits between GreenWaves' Linear (7.3) and 5x5-conv (12.8) benchmarks; the
#: effective HyperBus rate is above the README's "ideal" ~50 MB/s figure: one rate stands for
#: HyperFlash weights (GreenWaves' scripts set graph_const_exec_from_flash) and HyperRAM
#: activations, double-buffered against compute.
FITTED = Gap8Constants(
    eta_dense=7.2809, eta_depthwise=7.2809, out_cycles=2.1695, l3_mb_s=123.4405,
    layer_overhead_cycles=7613.8787,
)

#: The model's out-of-sample error on calibration.csv (leave-one-out: each row predicted by
#: constants fitted without it), from the same command (``out_of_sample``). Every result carries
#: it as its uncertainty band; tests/evaluators/profilers/test_gap8_model.py checks it against a
#: fresh computation.
OUT_OF_SAMPLE = {"loo_mape_pct": 14.46, "loo_max_abs_pct": 48.38, "lofo_mape_pct": 16.4,
                 "n_rows": 12}


@dataclass(frozen=True)
class Gap8Hardware:
    cluster_mhz: float = 175.0
    l2_budget_bytes: int = 350 * 1024


def _mem_bytes(layer: Any) -> float:
    """Bytes a memory-bound layer reads and writes."""
    if layer.kind == "resize":
        return (RESIZE_READS_PER_OUTPUT + 1) * layer.out_bytes
    if layer.kind == "norm":
        return NORM_PASSES * (layer.in_bytes + layer.out_bytes)
    return layer.in_bytes + layer.out_bytes


def simd_lane_use(layer: Any) -> float:
    """Row-width efficiency of a convolution: an output row of W pixels costs ceil(W / 4) steps
    of 4 (W = 5: 5 / 8 of the work is useful). An empirical shape factor, not read off the
    kernels: GreenWaves' SQ8 kernels (CNN_Conv_SQ8.c) split output features over the cores and
    walk each output plane row by row. Without it the leave-one-out MAPE is 18.8% (leave one
    family out 24.6%) against 14.5% (16.4%) with it, mostly on the narrow DS-CNN maps (W = 5
    and 10); counting 1x1 lanes over 4 input channels instead (what their 1x1 body vectorises)
    gives 19.2%."""
    if layer.kind not in _DENSE + ("depthwise",) or len(layer.out_shape) < 3:
        return 1.0
    w = int(layer.out_shape[-1])
    return w / (4 * math.ceil(w / 4))


def layer_terms(graph: Graph, hw: Gap8Hardware) -> dict[str, list[float]]:
    """Per-layer quantities that do not depend on the fitted constants (computed once per
    network, so that fitting evaluates the model on plain arrays)."""
    fits_l2 = graph.params_bytes + graph.peak_activation_bytes <= hw.l2_budget_bytes
    t: dict[str, list[float]] = {k: [] for k in (
        "dense_macs", "dw_macs", "conv_out", "fixed_compute", "dma", "l3_bytes", "l3_act_bytes")}
    for layer in graph.layers:
        kind = layer.kind
        lanes = simd_lane_use(layer)
        t["dense_macs"].append(layer.macs / lanes if kind in _DENSE else 0.0)
        t["dw_macs"].append(layer.macs / lanes if kind == "depthwise" else 0.0)
        conv = kind in _DENSE or kind == "depthwise"
        t["conv_out"].append(float(layer.out_bytes) if conv else 0.0)
        if kind == "linear":
            fixed = layer.macs / ETA_LINEAR
        elif conv:
            fixed = 0.0
        else:
            fixed = _mem_bytes(layer) / MEM_BYTES_PER_CYCLE
        t["fixed_compute"].append(fixed)
        t["dma"].append((layer.in_bytes + layer.out_bytes + layer.weight_bytes)
                        / DMA_BYTES_PER_CYCLE + DMA_SETUP_CYCLES)
        t["l3_bytes"].append(0.0 if fits_l2 else float(layer.weight_bytes))
        spill = layer.in_bytes + layer.out_bytes > hw.l2_budget_bytes
        t["l3_act_bytes"].append(float(layer.in_bytes + layer.out_bytes) if spill else 0.0)
    return t


def layer_cycles(terms: dict[str, Any], c: Gap8Constants, hw: Gap8Hardware) -> dict[str, Any]:
    """Per-layer cycle terms (numpy arrays) for the constants ``c``."""
    import numpy as np

    a = {k: np.asarray(v, dtype=float) for k, v in terms.items()}
    compute = (a["dense_macs"] / c.eta_dense + a["dw_macs"] / c.eta_depthwise
               + a["conv_out"] * c.out_cycles / CORES + a["fixed_compute"])
    # bytes * (cycles/us) / (bytes/us); L3 transfers are double-buffered like the DMA
    l3 = (a["l3_bytes"] + a["l3_act_bytes"]) * hw.cluster_mhz / c.l3_mb_s
    stacked = np.stack([compute, a["dma"], l3])
    return {
        "cycles": c.layer_overhead_cycles + stacked.max(axis=0),
        "bound": stacked.argmax(axis=0),
        "compute": compute, "dma": a["dma"], "l3": l3,
    }


def total_cycles(terms: dict[str, Any], c: Gap8Constants, hw: Gap8Hardware) -> float:
    return float(layer_cycles(terms, c, hw)["cycles"].sum())


_BOUND_NAMES = ("compute", "dma", "l3")


def estimate(graph: Graph, c: Gap8Constants, hw: Gap8Hardware) -> dict[str, Any]:
    """Total cycles, latency and memory figures of a walked network."""
    fits_l2 = graph.params_bytes + graph.peak_activation_bytes <= hw.l2_budget_bytes
    terms = layer_terms(graph, hw)
    lc = layer_cycles(terms, c, hw)
    per_layer = [
        {
            "cycles": float(lc["cycles"][i]),
            "bound": _BOUND_NAMES[int(lc["bound"][i])],
            "l3_bytes": terms["l3_bytes"][i] + terms["l3_act_bytes"][i],
            "compute_cycles": float(lc["compute"][i]),
            "dma_cycles": float(lc["dma"][i]),
            "l3_cycles": float(lc["l3"][i]),
        }
        for i in range(len(graph.layers))
    ]
    cycles = float(lc["cycles"].sum())
    return {
        "cycles": cycles,
        "latency_ms": cycles / (hw.cluster_mhz * 1e3),
        "macs": graph.macs,
        "params_bytes": graph.params_bytes,
        "peak_activation_bytes": graph.peak_activation_bytes,
        "fits_l2": fits_l2,
        "l3_bytes": sum(p["l3_bytes"] for p in per_layer),
        "per_layer": per_layer,
    }


def uncertainty() -> dict[str, Any]:
    """The band every analytic result carries: the model's out-of-sample error."""
    return {
        "latency_err_pct": OUT_OF_SAMPLE["loo_mape_pct"],
        "latency_err_max_pct": OUT_OF_SAMPLE["loo_max_abs_pct"],
        "basis": (f"leave-one-out error on {OUT_OF_SAMPLE['n_rows']} published GAP8 networks "
                  "(evaluators/profilers/gap8/calibration.csv): mean and worst absolute"),
    }


def log_bounds(names: list[str]) -> tuple[list[float], list[float]]:
    return ([math.log(BOUNDS[n][0]) for n in names], [math.log(BOUNDS[n][1]) for n in names])
