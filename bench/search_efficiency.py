"""Sample efficiency of search strategies on the real NAS-Bench-Graph table; prints JSON.

For each dataset the true Pareto front (``valid_perf`` maximised, ``latency_ms`` minimised) is
found by brute force over the table. Each strategy then searches the table space through Optuna
ask/tell with the sampler the service would build, and every *unique evaluable* arch it asks for
counts as one evaluation (repeats are answered from a cache and archs without a row fail, both
free, as they would be in the service). Figures, medians over seeds:

- ``recall``: fraction of the true front's archs evaluated, at each budget;
- ``hv_ratio``: hypervolume of the evaluated archs / of the true front, reference point at the
  nadir of the true front (its worst accuracy and worst latency) with chance-level archs left
  out of that nadir: an arch is chance-level when its accuracy is a far outlier of the dataset
  (below Q1 - 3 IQR, Tukey's far-out fence), e.g. arxiv's MLP-only archs at 0.55 where the
  typical arch scores 0.72;
- ``evals_to_hv_ratio_0.99`` and ``evals_to_recall_0.5``: evaluations until first reached
  (null when not reached within the largest budget; the median is null when half the seeds
  never reach it).

A run stops after ``--ask-factor`` x the largest budget asks; a strategy that keeps proposing
known archs (Optuna's TPE late in a run) may stop short of a budget, and its figures at that
budget are those of its last evaluation (``evals`` says how many it reached).

Baselines in ``--long-methods`` (random, nsga2) run to ``--long-budget`` evaluations so that their
evaluations-to-reach are numbers; ``versus`` compares ``surrogate`` with each baseline per
dataset (budgets where its median is lower; evaluation ratios, a lower bound when the baseline
did not reach a mark within its cap). ``--merge`` combines runs: per-dataset ones, and runs
of other methods on the same datasets (a ``--methods surrogate`` run against stored baselines,
the later file's entry winning). The figures on all nine datasets, 5 seeds, are in
``surrogate/RESULTS.md``.

Usage: ``python bench/search_efficiency.py [--datasets cora,pubmed] [--seeds 5]
[--budgets 50,100,200,500] [--methods random,nsga2,tpe,surrogate]``. Skips (exit 0, a JSON
message) when the table is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared/data/nas-bench-graph/"
TABLE_NAME = "nas_bench_graph_light.csv.gz"
PARAMS = ["link", "op0", "op1", "op2", "op3"]
OBJECTIVES = [("valid_perf", "maximize"), ("latency_ms", "minimize")]
ALL_DATASETS = ["arxiv", "citeseer", "computers", "cora", "cs", "photo", "physics", "proteins",
                "pubmed"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_TABLE,
                   help=f"folder holding {TABLE_NAME}")
    p.add_argument("--datasets", default="cora,citeseer,pubmed,photo,computers",
                   help=f"comma-separated, from {','.join(ALL_DATASETS)} or 'all'")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budgets", default="50,100,200,500")
    p.add_argument("--methods", default="random,nsga2,tpe,surrogate")
    p.add_argument("--strategy-options", type=json.loads, default={},
                   help='JSON {"method": {option: value}}, e.g. {"surrogate": {"kappa": 0.5}}')
    p.add_argument("--ask-factor", type=int, default=20,
                   help="stop a run after this many asks per budgeted evaluation")
    p.add_argument("--long-budget", type=int, default=2000,
                   help="evaluations for --long-methods, so that their evaluations-to-reach "
                   "are numbers rather than 'not within the largest budget'")
    p.add_argument("--long-methods", default="random,nsga2",
                   help="comma-separated methods run to --long-budget ('' for none)")
    p.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                   help="combine the JSON outputs of earlier runs (e.g. one per dataset) into "
                   "one output with a fresh summary; runs nothing")
    p.add_argument("--markdown", action="store_true",
                   help="print the medians as a Markdown table instead of JSON")
    args = p.parse_args(argv)
    args.datasets = ALL_DATASETS if args.datasets == "all" else args.datasets.split(",")
    unknown = sorted(set(args.datasets) - set(ALL_DATASETS))
    if unknown:
        p.error(f"--datasets: unknown {unknown}; allowed: {', '.join(ALL_DATASETS)}, all")
    try:
        args.budgets = sorted(int(b) for b in args.budgets.split(","))
    except ValueError:
        p.error("--budgets: comma-separated positive integers, e.g. 50,100,200")
    if args.seeds < 1 or not args.budgets or args.budgets[0] < 1:
        p.error("--seeds and --budgets must be positive")
    args.methods = args.methods.split(",")
    args.long_methods = [m for m in args.long_methods.split(",") if m]
    if args.long_methods and args.long_budget < args.budgets[-1]:
        p.error(f"--long-budget {args.long_budget} is below the largest budget "
                f"{args.budgets[-1]}")
    return args


class Problem:
    """One dataset of the table: the space, its rows, the true front and the HV reference."""

    def __init__(self, dataset: str):
        from search_spaces.table import TableSpace
        from surrogate.pareto import hypervolume, pareto_mask, to_loss

        self.dataset = dataset
        self.space = TableSpace({
            "path": TABLE_NAME, "params": PARAMS, "metrics": [m for m, _ in OBJECTIVES],
            "filter": {"dataset": dataset},
        })
        self.directions = [d for _, d in OBJECTIVES]
        self.rows = {k: tuple(v[m] for m, _ in OBJECTIVES)
                     for k, v in self.space.table.lookup.items()}
        keys = list(self.rows)
        loss = to_loss(np.array([self.rows[k] for k in keys]), self.directions)
        on_front = pareto_mask(loss)
        self.true_front = {k for k, f in zip(keys, on_front, strict=True) if f}
        acc = -loss[:, 0]
        q1, q3 = np.quantile(acc, [0.25, 0.75])
        self.chance_fence = float(q1 - 3 * (q3 - q1))
        front = loss[on_front]
        self.n_chance_on_front = int((-front[:, 0] < self.chance_fence).sum())
        self.reference = front[-front[:, 0] >= self.chance_fence].max(axis=0)
        self.true_hv = hypervolume(front, self.reference)
        self._hv, self._loss = hypervolume, to_loss

    def dominates(self, a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        la, lb = self._loss(np.array([a, b]), self.directions)
        return bool(np.all(la <= lb) and np.any(la < lb))

    def hv_ratio(self, values: list[tuple[float, ...]]) -> float:
        return self._hv(self._loss(np.array(values), self.directions), self.reference) / (
            self.true_hv
        )


def make_sampler(method: str, problem: Problem, seed: int, options: dict) -> Any:
    from service.engine.strategies import STRATEGIES

    context = {"space": problem.space, "objectives": [m for m, _ in OBJECTIVES]}
    return STRATEGIES.get(method)(options).make_sampler(seed=seed, context=context)


def run_one(
    problem: Problem, method: str, seed: int, budget: int, ask_factor: int, options: dict
) -> dict:
    """Search until ``budget`` unique evaluable archs; the order they were evaluated in."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    dims = problem.space.dimensions()
    dists = {n: CategoricalDistribution(list(d.choices)) for n, d in dims.items()}
    study = optuna.create_study(directions=problem.directions,
                                sampler=make_sampler(method, problem, seed, options))
    order: list[tuple] = []
    seen: set[tuple] = set()
    asks = 0
    start = time.process_time()
    while len(order) < budget and asks < ask_factor * budget:
        trial = study.ask(dists)
        asks += 1
        key = tuple(trial.params[p] for p in PARAMS)
        values = problem.rows.get(key)
        if values is None:
            study.tell(trial, state=TrialState.FAIL)
            continue
        if key not in seen:
            seen.add(key)
            order.append(key)
        study.tell(trial, list(values))
    return {"order": order, "asks": asks, "cpu_s": time.process_time() - start}


def curves(problem: Problem, order: list[tuple], budgets: list[int]) -> dict:
    recall, hv = [], []
    hits = 0
    # The evaluated archs' front, kept incrementally: the hypervolume of a prefix is that of
    # its front, and recomputing the front of every prefix is quadratic in long runs.
    front: list[tuple[float, ...]] = []
    for key in order:
        hits += key in problem.true_front
        recall.append(hits / len(problem.true_front))
        values = problem.rows[key]
        if not any(problem.dominates(f, values) or f == values for f in front):
            front = [f for f in front if not problem.dominates(values, f)] + [values]
            hv.append(problem.hv_ratio(front))
        else:
            hv.append(hv[-1])

    def first(series: list[float], mark: float) -> float:
        return next((n for n, v in enumerate(series, 1) if v >= mark - 1e-12), math.inf)

    def at(series: list[float], b: int) -> float:
        return series[min(b, len(series)) - 1] if series else 0.0

    return {
        "recall": {b: at(recall, b) for b in budgets},
        "hv_ratio": {b: at(hv, b) for b in budgets},
        "evals_to_hv_ratio_0.99": first(hv, 0.99),
        "evals_to_recall_0.5": first(recall, 0.5),
    }


def median(values: list[float]) -> float | None:
    m = float(np.median(values))
    return None if math.isinf(m) else round(m, 4)


MARKS = ("evals_to_hv_ratio_0.99", "evals_to_recall_0.5")


def run_method(problem: Problem, method: str, args: argparse.Namespace) -> dict:
    """Medians over seeds of one method on one dataset."""
    cap = args.long_budget if method in args.long_methods else args.budgets[-1]
    budgets = sorted({*args.budgets, cap})
    runs = []
    for seed in range(args.seeds):
        options = args.strategy_options.get(method, {})
        r = run_one(problem, method, seed, cap, args.ask_factor, options)
        runs.append({**curves(problem, r["order"], budgets),
                     "asks": r["asks"], "cpu_s": r["cpu_s"], "evals": len(r["order"])})
    return {
        "recall": {b: median([r["recall"][b] for r in runs]) for b in budgets},
        "hv_ratio": {b: median([r["hv_ratio"][b] for r in runs]) for b in budgets},
        **{mark: median([r[mark] for r in runs]) for mark in MARKS},
        "evals_cap": cap,
        "evals": median([r["evals"] for r in runs]),
        "asks": median([r["asks"] for r in runs]),
        "cpu_s_per_run": median([r["cpu_s"] for r in runs]),
    }


def versus(mine: dict, other: dict, budgets: list[int]) -> dict:
    """``surrogate`` against a baseline on one dataset: the budgets where it is worse (median
    recall or HV ratio below the baseline's), and per mark the evaluations ratio
    baseline/surrogate. When the baseline never reached a mark within its cap the ratio is a
    lower bound (cap/surrogate); when the surrogate did not reach it, there is no ratio."""
    worse = [
        {"budget": b, "metric": k, "surrogate": mine[k][b], "baseline": other[k][b]}
        for b in budgets for k in ("recall", "hv_ratio")
        if mine[k][b] is not None and other[k][b] is not None and mine[k][b] < other[k][b]
    ]
    ratios = {}
    for mark in MARKS:
        a, b = mine[mark], other[mark]
        if a is None:
            ratios[mark] = {"ratio": None, "kind": "surrogate did not reach it"}
        elif b is None:
            ratios[mark] = {"ratio": round(other["evals_cap"] / a, 2), "kind": "lower bound"}
        else:
            ratios[mark] = {"ratio": round(b / a, 2), "kind": "exact"}
    return {"worse_at": worse, "evals_ratio": ratios}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.merge:
        out = merge(args.merge)
        print(markdown(out) if args.markdown else json.dumps(out, indent=1))
        return 0
    table = args.data_dir / TABLE_NAME
    if not table.is_file():
        print(json.dumps({"skipped": f"{table} not found (NAS-Bench-Graph table absent)"}))
        return 0
    os.environ["PARETONAS_DATA_DIRS"] = str(args.data_dir.resolve())
    import optuna
    import torch
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    # One thread for torch and for BLAS (the GP's Cholesky): on a shared 2-core machine a
    # second OpenBLAS thread made a 500x500 Cholesky 5x slower (0.05 s against 0.01 s).
    torch.set_num_threads(1)
    threadpool_limits(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: dict[str, Any] = {
        "benchmark": "search_efficiency", "table": TABLE_NAME,
        "objectives": dict(OBJECTIVES), "budgets": args.budgets, "seeds": args.seeds,
        "methods": args.methods, "strategy_options": args.strategy_options,
        "long_budget": args.long_budget, "long_methods": args.long_methods,
        "datasets": {},
    }
    for dataset in args.datasets:
        problem = Problem(dataset)
        entry: dict[str, Any] = {
            "archs": len(problem.rows), "true_front": len(problem.true_front),
            "chance_level_on_front": problem.n_chance_on_front,
            "reference_point": [round(-problem.reference[0], 5), round(problem.reference[1], 5)],
            "methods": {},
        }
        for method in args.methods:
            entry["methods"][method] = run_method(problem, method, args)
            logging.getLogger("bench").warning("%s %s done", dataset, method)
        out["datasets"][dataset] = entry
    finish(out)
    print(markdown(out) if args.markdown else json.dumps(out, indent=1))
    return 0


def merge(paths: list[Path]) -> dict:
    """One output from several runs with the same budgets and seeds: different datasets, or
    different methods on the same dataset (e.g. a new ``--methods surrogate`` run merged with
    stored baselines). When two files hold the same method on the same dataset the later file's
    entry wins; ``sources`` says which file each entry came from."""
    parts = []
    for path in paths:
        try:
            parts.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--merge: cannot read {path}: {exc}") from exc
    skip = ("datasets", "summary", "versus", "sources", "methods", "strategy_options",
            "long_methods", "long_budget")
    out = {k: v for k, v in parts[0].items() if k not in skip}
    out.update(methods=[], strategy_options={}, long_methods=[], datasets={}, sources={})
    used: dict[tuple[str, str], tuple[Path, dict]] = {}  # (dataset, method) -> file, part
    for path, part in zip(paths, parts, strict=True):
        for key in ("budgets", "seeds"):
            if part.get(key) != out.get(key):
                raise SystemExit(f"--merge: {path} has {key}={part.get(key)!r}, the first file "
                                 f"{out.get(key)!r}; only runs with the same settings combine")
        for dataset, entry in part["datasets"].items():
            # JSON turned the integer budget keys into strings.
            for m in entry["methods"].values():
                for k in ("recall", "hv_ratio"):
                    m[k] = {int(b): v for b, v in m[k].items()}
            mine = out["datasets"].setdefault(dataset, {**entry, "methods": {}})
            for key in ("archs", "true_front", "reference_point"):
                if entry.get(key) != mine.get(key):
                    raise SystemExit(f"--merge: {path} has {dataset} {key}={entry.get(key)!r}, "
                                     f"an earlier file {mine.get(key)!r} (another table?)")
            mine["methods"].update(entry["methods"])
            for method in entry["methods"]:
                used[dataset, method] = (path, part)
    # Per method, the files its kept entries came from must agree on its options.
    for (dataset, method), (path, part) in used.items():
        options = part.get("strategy_options", {}).get(method, {})
        if method not in out["methods"]:
            out["methods"].append(method)
            out["strategy_options"][method] = options
        elif options != out["strategy_options"][method]:
            raise SystemExit(f"--merge: {method} ran with options {options!r} in {path} and "
                             f"{out['strategy_options'][method]!r} in another file; one "
                             "method's figures must come from one setting")
        if method in part.get("long_methods", []) and method not in out["long_methods"]:
            out["long_methods"].append(method)
        out["sources"].setdefault(dataset, {})[method] = str(path)
    out["strategy_options"] = {k: v for k, v in out["strategy_options"].items() if v}
    caps = [m["evals_cap"] for d in out["datasets"].values() for name, m in d["methods"].items()
            if name in out["long_methods"]]
    out["long_budget"] = max(caps, default=None)
    finish(out)
    return out


def finish(out: dict) -> None:
    """Adds the cross-dataset summary and the surrogate-vs-baseline comparison."""
    budgets, methods = out["budgets"], out["methods"]
    summary: dict[str, Any] = {}
    for method in methods:
        # Medians over the datasets that ran the method (a merge may lack it on some).
        per = [d["methods"][method] for d in out["datasets"].values() if method in d["methods"]]
        inf = math.inf
        summary[method] = {
            "recall": {b: median([p["recall"][b] for p in per]) for b in budgets},
            "hv_ratio": {b: median([p["hv_ratio"][b] for p in per]) for b in budgets},
            **{mark: median([p[mark] or inf for p in per]) for mark in MARKS},
        }
    out["summary"] = summary
    if "surrogate" in methods:
        out["versus"] = {
            base: {ds: versus(d["methods"]["surrogate"], d["methods"][base], budgets)
                   for ds, d in out["datasets"].items()
                   if "surrogate" in d["methods"] and base in d["methods"]}
            for base in methods if base != "surrogate"
        }


def markdown(out: dict) -> str:
    """The medians as Markdown: one row per dataset and method."""
    budgets = out["budgets"]
    head = (["dataset", "method"] + [f"recall@{b}" for b in budgets]
            + [f"HV@{b}" for b in budgets] + ["evals to HV 0.99", "evals to recall 0.5"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def cell(v: Any, cap: int) -> str:
        return f"> {cap}" if v is None else f"{v:g}"

    for ds, d in out["datasets"].items():
        for method, m in d["methods"].items():
            row = [ds, method] + [f"{m['recall'][b]:.2f}" for b in budgets]
            row += [f"{m['hv_ratio'][b]:.3f}" for b in budgets]
            row += [cell(m[mark], m["evals_cap"]) for mark in MARKS]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
