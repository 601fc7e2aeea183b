"""NAS-Bench-Macro with device objectives: rebuild each network, measure it, write a table.

NAS-Bench-Macro (``../shared/data/nas-bench-macro/``, 6,561 archs = 3^8, CIFAR-10 accuracy,
params, FLOPs) publishes no weights and no latency. This script rebuilds each network from the
README's description (``macro_net``; its parameter counts equal the table's ``params``) and
measures it with the project's own profilers:

- ``gap8_ms`` (and ``gap8_peak_act_kb``): the ``gap8`` profiler's calibrated analytic model
  (int8 on GAP8 at 175 MHz), for every arch: deterministic, 0.01-0.04 s per net;
- ``ort_cpu_ms``: the ``onnxruntime-cpu`` profiler (one thread, fastest of its samples), only
  for ``--ort-sample`` archs drawn at random (seed 0, default 100): ONNX export + a session
  took a median 4.6 s per net on this shared 2-core machine (2.2 s when quieter), so the full
  column (4-8 h) is not measured; ``--ort-sample 0`` skips it. Rows outside the sample have an
  empty ``ort_cpu_ms``.

The output (``--out``, default ``bench/.cache/nas_bench_macro_derived.csv``, gitignored) holds
the source columns ``arch``, ``layer0..7``, ``mean_acc``, ``params``, ``flops`` plus the measured
ones. Prints a JSON summary (timings per net, how many measured). Resumable: rows already in the
output are kept.

Usage: ``python bench/make_macro_table.py [--limit N] [--ort-sample 0]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SOURCE = (Path(__file__).resolve().parents[2]
          / "shared/data/nas-bench-macro/nas_bench_macro_cifar10.csv")
DEFAULT_OUT = Path(__file__).resolve().parent / ".cache/nas_bench_macro_derived.csv"
KEEP = ["arch", *(f"layer{i}" for i in range(8)), "mean_acc", "params", "flops"]
MEASURED = ["gap8_ms", "gap8_peak_act_kb", "ort_cpu_ms"]


def macro_net(code: str):
    """The network of an 8-character arch code, as NAS-Bench-Macro's README describes it."""
    from torch import nn

    def bn_conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return layers + [nn.ReLU(inplace=True)] if relu else layers

    class Inverted(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, k: int, expand: int):
            super().__init__()
            mid = cin * expand
            self.body = nn.Sequential(*bn_conv(cin, mid, 1), *bn_conv(mid, mid, k, stride, mid),
                                      *bn_conv(mid, cout, 1, relu=False))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = self.body(x)
            return x + y if self.residual else y

    stages = [(64, 2), (128, 3), (256, 3)]  # (channels, layers); each stage's first has stride 2
    blocks: list[nn.Module] = [nn.Sequential(*bn_conv(3, 32, 3))]
    cin, pos = 32, 0
    for cout, n in stages:
        for i in range(n):
            stride = 2 if i == 0 else 1
            choice = code[pos]
            pos += 1
            if choice == "0":  # identity; a 1x1 conv + BN where stride or channels change
                blocks.append(nn.Sequential(*bn_conv(cin, cout, 1, stride, relu=False))
                              if stride != 1 or cin != cout else nn.Identity())
            elif choice == "1":
                blocks.append(Inverted(cin, cout, stride, 3, 3))
            else:
                blocks.append(Inverted(cin, cout, stride, 5, 6))
            cin = cout
    blocks += [nn.Sequential(*bn_conv(cin, 1280, 1)), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(1280, 10)]
    return nn.Sequential(*blocks).eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", type=Path, default=SOURCE)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--limit", type=int, default=0, help="measure at most N new archs (0: all)")
    p.add_argument("--ort-sample", type=int, default=100,
                   help="archs (random, seed 0) also measured with onnxruntime-cpu")
    args = p.parse_args(argv)
    if not args.source.is_file():
        print(json.dumps({"skipped": f"{args.source} not found"}))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import torch

    from evaluators.profilers.gap8.profiler import Gap8Profiler
    from evaluators.profilers.onnxruntime_cpu import OnnxRuntimeCpuProfiler

    torch.set_num_threads(1)
    with open(args.source, newline="") as fh:
        rows = [{k: r[k] for k in KEEP} for r in csv.DictReader(fh)]
    ort_set = {rows[i]["arch"] for i in
               np.random.default_rng(0).permutation(len(rows))[: args.ort_sample]}
    done: dict[str, dict] = {}
    if args.out.is_file():
        with open(args.out, newline="") as fh:
            done = {r["arch"]: r for r in csv.DictReader(fh)}
    gap8 = Gap8Profiler({})
    ort = OnnxRuntimeCpuProfiler({"threads": 1}) if ort_set else None
    x = torch.randn(1, 3, 32, 32)
    t_gap8, t_ort, measured = [], [], 0
    for row in rows:
        if row["arch"] in done or (args.limit and measured >= args.limit):
            continue
        net = macro_net(row["arch"])
        t0 = time.perf_counter()
        with torch.no_grad():
            g = gap8.measure(net, x)
        t_gap8.append(time.perf_counter() - t0)
        row["gap8_ms"] = round(g.latency_ms, 5)
        row["gap8_peak_act_kb"] = round(g.metrics["peak_activation_bytes"] / 1024, 3)
        row["ort_cpu_ms"] = ""
        if ort is not None and row["arch"] in ort_set:
            t0 = time.perf_counter()
            row["ort_cpu_ms"] = round(ort.measure(net, x).latency_ms, 5)
            t_ort.append(time.perf_counter() - t0)
        done[row["arch"]] = row
        measured += 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=KEEP + MEASURED)
        w.writeheader()
        w.writerows(done[r["arch"]] for r in rows if r["arch"] in done)
    tmp.replace(args.out)
    print(json.dumps({
        "out": str(args.out), "rows": len(done), "measured_now": measured,
        "gap8_s_per_net_median": float(np.median(t_gap8)) if t_gap8 else None,
        "ort_cpu_s_per_net_median": float(np.median(t_ort)) if t_ort else None,
        "ort_cpu_measured_now": len(t_ort),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
