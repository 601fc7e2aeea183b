"""A per-layer cycle model of int8 inference on GAP8's 8-core cluster.

For each deployed layer (see ``graph.py``)::

    cycles = overhead + max(MACs / eta(kind),                 # compute on 8 cores
                            L2<->L1 bytes / dma_bw,           # cluster DMA
                            L3 bytes * f_cluster / bw_l3)     # HyperBus, when data is off-chip

Layers are double-buffered, hence ``max``. Weights live in L3 when the network (params + peak
activations) does not fit the L2 budget; a layer's activations go through L3 when its input and
output together exceed that budget. Fixed hardware constants come from
``shared/data/gap8/README.md``; four global constants are fitted (``calibrate.py``) to the
published GreenWaves latencies; there are no per-model factors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evaluators.profilers.gap8.graph import Graph, Layer

#: cluster DMA L2<->L1 bandwidth (bytes/cycle) and per-transfer setup, from DORY's GAP8 description
DMA_BYTES_PER_CYCLE = 8.0
DMA_SETUP_CYCLES = 10.0
#: element-wise/pooling/normalisation throughput: one int8 op per core per cycle
ELTWISE_OPS_PER_CYCLE = 8.0
#: normalisation and softmax need a few ops per element (max/sum/divide)
NORM_OPS_PER_ELEMENT = 4.0


@dataclass(frozen=True)
class Gap8Constants:
    """The fitted global constants (see ``calibrate.py``; values in ``FITTED``)."""

    eta_dense: float  # MAC/cycle of standard, pointwise and fully connected layers
    eta_depthwise: float  # MAC/cycle of depthwise convolutions
    l3_mb_s: float  # effective HyperBus bandwidth, MB/s
    layer_overhead_cycles: float  # per-layer fixed cost (tiling setup, FC<->cluster dispatch)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


#: Least-squares fit (log-ratio residuals) on published_latency.csv; regenerate with
#: ``python -m evaluators.profilers.gap8.calibrate``. Five rows identify two constants well
#: (dense MAC/cycle and the L3 bandwidth, which lands on the README's ~50 MB/s); depthwise
#: throughput and the per-layer overhead end at their bounds (depthwise layers are DMA/L3 bound in
#: this model whatever their compute rate), i.e. the data does not pin them down.
FITTED = Gap8Constants(
    eta_dense=8.88, eta_depthwise=15.94, l3_mb_s=49.10, layer_overhead_cycles=10.13
)


@dataclass(frozen=True)
class Gap8Hardware:
    cluster_mhz: float = 175.0
    l2_budget_bytes: int = 350 * 1024


def layer_cycles(
    layer: Layer, c: Gap8Constants, hw: Gap8Hardware, *, weights_in_l3: bool
) -> dict[str, Any]:
    """The cycle estimate of one layer and which term bounds it."""
    if layer.kind in ("conv", "pointwise", "linear", "matmul"):
        compute = layer.macs / c.eta_dense
    elif layer.kind == "depthwise":
        compute = layer.macs / c.eta_depthwise
    else:
        ops = int(layer.detail.get("ops", layer.out_bytes))
        if layer.kind == "norm":
            ops = int(ops * NORM_OPS_PER_ELEMENT)
        compute = ops / ELTWISE_OPS_PER_CYCLE
    l1_bytes = layer.in_bytes + layer.out_bytes + layer.weight_bytes
    dma = l1_bytes / DMA_BYTES_PER_CYCLE + DMA_SETUP_CYCLES
    l3_bytes = layer.weight_bytes if weights_in_l3 else 0
    if layer.in_bytes + layer.out_bytes > hw.l2_budget_bytes:
        l3_bytes += layer.in_bytes + layer.out_bytes
    l3 = l3_bytes * hw.cluster_mhz / c.l3_mb_s  # bytes * (cycles/us) / (bytes/us)
    terms = {"compute": compute, "dma": dma, "l3": l3}
    bound = max(terms, key=terms.__getitem__)
    return {
        "cycles": c.layer_overhead_cycles + terms[bound],
        "bound": bound,
        "l3_bytes": l3_bytes,
        **{f"{k}_cycles": v for k, v in terms.items()},
    }


def estimate(graph: Graph, c: Gap8Constants, hw: Gap8Hardware) -> dict[str, Any]:
    """Total cycles, latency and memory figures of a walked network."""
    fits_l2 = graph.params_bytes + graph.peak_activation_bytes <= hw.l2_budget_bytes
    per_layer = [layer_cycles(layer, c, hw, weights_in_l3=not fits_l2) for layer in graph.layers]
    cycles = sum(p["cycles"] for p in per_layer)
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
