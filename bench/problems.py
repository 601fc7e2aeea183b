"""The problems of ``bench/search_efficiency.py``'s suite, and which split each belongs to.

Split (issue #17): the ``surrogate`` strategy's defaults are chosen on the **dev** problems only;
the **test** problems are run once per candidate default and reported apart. Every problem is
a table (``TableSpace``) searched through the service's samplers; its true front comes from
brute force over all rows.

- ``nbg-<dataset>``: NAS-Bench-Graph (26,206 rows of 59,049 combinations; proteins 2,021),
  ``valid_perf`` max, ``latency_ms`` min. The defaults were tuned on all nine datasets over
  four rounds (``surrogate/RESULTS.md``), so they are all **dev**;
  ``nbg3-<dataset>`` adds ``params_M`` (3 objectives); ``nbgc-pubmed`` is pubmed with the
  constraint ``params_M <= 0.2`` (46% of rows feasible), the issue's constrained case.
- ``macro-*``: NAS-Bench-Macro (6,561 = 3^8 MobileNetV2-block archs, every combination present,
  CIFAR-10 ``mean_acc`` max) with the GAP8 latency measured by ``bench/make_macro_table.py``:
  ``macro-gap8`` (2 objectives), ``macro-params-gap8`` (3), ``macro-params-flops-gap8`` (4),
  ``macroc-gap8`` (2, constraint ``params <= 1.0e6``). A space nobody tuned on: **test**.
- ``synth<seed>-<m>obj``: synthetic categorical tables (``synthetic_table``: 7 dims of 4
  choices, 16,384 archs) whose objectives mix additive effects, pairwise interactions and
  multiplicative costs; seed 1 is **dev**, seeds 2 and 3 **test**.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared/data"
CACHE = Path(__file__).resolve().parent / ".cache"
NBG = "nas_bench_graph_light.csv.gz"
MACRO = "nas_bench_macro_derived.csv"
NBG_PARAMS = ["link", "op0", "op1", "op2", "op3"]
MACRO_PARAMS = [f"layer{i}" for i in range(8)]
NBG_DATASETS = ["arxiv", "citeseer", "computers", "cora", "cs", "photo", "physics", "proteins",
                "pubmed"]


@dataclass(frozen=True)
class ProblemDef:
    name: str
    split: str  # "dev" or "test"
    path: str  # under DATA or CACHE
    params: list[str]
    objectives: list[tuple[str, str]]
    constraints: list[tuple[str, float]] = field(default_factory=list)  # (metric, max)
    filter: dict[str, str] = field(default_factory=dict)


def _nbg(ds: str) -> ProblemDef:
    return ProblemDef(f"nbg-{ds}", "dev", NBG, NBG_PARAMS,
                      [("valid_perf", "maximize"), ("latency_ms", "minimize")],
                      filter={"dataset": ds})


PROBLEMS: dict[str, ProblemDef] = {p.name: p for p in [
    *(_nbg(ds) for ds in NBG_DATASETS),
    ProblemDef("nbg3-cora", "dev", NBG, NBG_PARAMS, [
        ("valid_perf", "maximize"), ("latency_ms", "minimize"), ("params_M", "minimize")],
        filter={"dataset": "cora"}),
    ProblemDef("nbgc-pubmed", "dev", NBG, NBG_PARAMS,
               [("valid_perf", "maximize"), ("latency_ms", "minimize")],
               constraints=[("params_M", 0.2)], filter={"dataset": "pubmed"}),
    ProblemDef("synth1-2obj", "dev", "synthetic_1.csv", [f"d{i}" for i in range(7)],
               [("acc", "maximize"), ("latency_ms", "minimize")]),
    ProblemDef("synth1-3obj", "dev", "synthetic_1.csv", [f"d{i}" for i in range(7)],
               [("acc", "maximize"), ("latency_ms", "minimize"), ("memory_kb", "minimize")]),
    ProblemDef("macro-gap8", "test", MACRO, MACRO_PARAMS,
               [("mean_acc", "maximize"), ("gap8_ms", "minimize")]),
    ProblemDef("macro-params-gap8", "test", MACRO, MACRO_PARAMS,
               [("mean_acc", "maximize"), ("params", "minimize"), ("gap8_ms", "minimize")]),
    ProblemDef("macro-params-flops-gap8", "test", MACRO, MACRO_PARAMS,
               [("mean_acc", "maximize"), ("params", "minimize"), ("flops", "minimize"),
                ("gap8_ms", "minimize")]),
    ProblemDef("macroc-gap8", "test", MACRO, MACRO_PARAMS,
               [("mean_acc", "maximize"), ("gap8_ms", "minimize")],
               constraints=[("params", 1.0e6)]),
    ProblemDef("synth2-2obj", "test", "synthetic_2.csv", [f"d{i}" for i in range(7)],
               [("acc", "maximize"), ("latency_ms", "minimize")]),
    ProblemDef("synth3-3obj", "test", "synthetic_3.csv", [f"d{i}" for i in range(7)],
               [("acc", "maximize"), ("latency_ms", "minimize"), ("memory_kb", "minimize")]),
]}
SUITES = {
    "dev": ["nbg-cora", "nbg-photo", "nbg-computers", "nbg3-cora", "nbgc-pubmed",
            "synth1-2obj", "synth1-3obj"],
    "test": ["macro-gap8", "macro-params-gap8", "macro-params-flops-gap8", "macroc-gap8",
             "synth2-2obj", "synth3-3obj"],
}


def synthetic_table(seed: int, path: Path, *, dims: int = 7, choices: int = 4) -> Path:
    """A categorical table with a structure like a NAS space's, every combination present.

    acc: a saturating function of additive per-choice effects plus random pairwise
    interactions (so one-hot-additive models are not exact) and seeded noise; latency_ms:
    a product of per-choice cost factors (multiplicative, as layer costs compound);
    memory_kb: the largest per-layer activation (a max, not a sum). Deterministic per seed."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, 1, (dims, choices))
    pairs = [(i, j) for i in range(dims) for j in range(i + 1, dims)]
    inter = {p: rng.normal(0, 0.35, (choices, choices)) for p in pairs}
    cost = np.exp(rng.normal(0, 0.35, (dims, choices)))
    # costly choices tend to be the accurate ones: the trade-off a front needs
    cost *= np.exp(0.25 * (effect - effect.mean()))
    mem = rng.uniform(8, 64, (dims, choices))
    rows = []
    for combo in itertools.product(range(choices), repeat=dims):
        c = np.array(combo)
        s = effect[np.arange(dims), c].sum() + sum(inter[i, j][c[i], c[j]] for i, j in pairs)
        acc = 0.95 / (1 + np.exp(-(s + 4) / 3)) + rng.normal(0, 0.004)  # median ~0.7
        lat = float(np.prod(cost[np.arange(dims), c]))
        rows.append([*combo, round(float(acc), 5), round(lat, 5),
                     round(float(mem[np.arange(dims), c].max()), 3)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f"d{i}" for i in range(dims)] + ["acc", "latency_ms", "memory_kb"])
        w.writerows(rows)
    return path


def prepare(problem: ProblemDef) -> str | None:
    """Make sure the problem's table exists; None, or why it cannot run."""
    if problem.path.startswith("synthetic_"):
        path = CACHE / problem.path
        if not path.is_file():
            synthetic_table(int(problem.path.split("_")[1].split(".")[0]), path)
        return None
    if problem.path == MACRO:
        if not (CACHE / MACRO).is_file():
            return f"{CACHE / MACRO} absent: run bench/make_macro_table.py first"
        return None
    if not (DATA / "nas-bench-graph" / NBG).is_file():
        return f"{DATA / 'nas-bench-graph' / NBG} absent"
    return None


def data_dirs() -> str:
    import os

    return os.pathsep.join(str(p) for p in (DATA / "nas-bench-graph", CACHE))
