"""Sample efficiency of search strategies on the real NAS-Bench-Graph table; prints JSON.

For each dataset the true Pareto front (``valid_perf`` maximised, ``latency_ms`` minimised) is
found by brute force over the table. Each strategy then searches the table space through Optuna
ask/tell with the sampler the service would build, and every *unique evaluable* arch it asks for
counts as one evaluation (repeats are answered from a cache; archs without a row are re-asked
through ``service.engine.valid_ask`` as the service's runner does; both free). Figures, medians:

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

The suite (issue #17, ``bench/problems.py``): ``--problems dev`` / ``--problems test`` runs the
declared split (NAS-Bench-Graph 2- and 3-objective and constrained problems and a synthetic
table for dev; NAS-Bench-Macro with GAP8 latency, 2-4 objectives and constrained, and two other
synthetic tables for test). Constrained problems report ``infeasible_share`` (the share of
evaluations that violate a constraint) and their front and HV use feasible archs only;
``s_per_eval`` is the process CPU time per evaluation (proposal overhead; the lookups are
free). ``--markdown`` prints the dev and test tables apart.

Usage: ``python bench/search_efficiency.py [--datasets cora,pubmed] [--seeds 5]
[--budgets 50,100,200,500] [--methods random,nsga2,tpe,gp,surrogate] [--problems test]``.
Skips (exit 0, a JSON message) when the table is absent.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/problems.py

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared/data/nas-bench-graph/"
TABLE_NAME = "nas_bench_graph_light.csv.gz"
OBJECTIVES = [("valid_perf", "maximize"), ("latency_ms", "minimize")]
ALL_DATASETS = ["arxiv", "citeseer", "computers", "cora", "cs", "photo", "physics", "proteins",
                "pubmed"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_TABLE,
                   help=f"folder holding {TABLE_NAME}")
    p.add_argument("--datasets", default="cora,citeseer,pubmed,photo,computers",
                   help=f"comma-separated, from {','.join(ALL_DATASETS)} or 'all'")
    p.add_argument("--problems", default=None,
                   help="comma-separated problems of bench/problems.py, or 'dev' / 'test' (the "
                   "suite's split); overrides --datasets")
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
    if args.problems:
        from problems import PROBLEMS, SUITES

        names = [n for part in args.problems.split(",") for n in SUITES.get(part, [part])]
        unknown = sorted(set(names) - set(PROBLEMS))
        if unknown:
            p.error(f"--problems: unknown {unknown}; allowed: dev, test, {', '.join(PROBLEMS)}")
        args.datasets = names
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
    """One table problem (``bench/problems.py``): the space, its rows, the true front (of the
    feasible rows, when constrained) and the HV reference (the true front's nadir)."""

    def __init__(self, dataset: str):
        from problems import PROBLEMS, ProblemDef, _nbg

        from search_spaces.table import TableSpace
        from surrogate.pareto import hypervolume, pareto_mask, to_loss

        # a bare NAS-Bench-Graph dataset name (earlier runs' keys) is its 2-objective problem
        d: ProblemDef = PROBLEMS[dataset] if dataset in PROBLEMS else _nbg(dataset)
        self.dataset, self.split, self.params = dataset, d.split, d.params
        self.objectives, self.constraints = d.objectives, d.constraints
        metrics = [m for m, _ in d.objectives] + [m for m, _ in d.constraints]
        self.space = TableSpace({"path": d.path, "params": d.params,
                                 "metrics": list(dict.fromkeys(metrics)), "filter": d.filter})
        self.directions = [dr for _, dr in d.objectives]
        lookup = self.space.table.lookup
        self.rows = {k: tuple(v[m] for m, _ in d.objectives) for k, v in lookup.items()}
        self.violations = {k: tuple(v[m] - cap for m, cap in d.constraints)
                           for k, v in lookup.items()}
        keys = [k for k in self.rows if self.feasible(k)]
        self.feasible_share = len(keys) / len(self.rows)
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

    def feasible(self, key: tuple) -> bool:
        return all(v <= 0 for v in self.violations[key])

    def dominates(self, a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        la, lb = self._loss(np.array([a, b]), self.directions)
        return bool(np.all(la <= lb) and np.any(la < lb))

    def hv_ratio(self, values: list[tuple[float, ...]]) -> float:
        return self._hv(self._loss(np.array(values), self.directions), self.reference) / (
            self.true_hv
        )


def make_sampler(method: str, problem: Problem, seed: int, options: dict) -> Any:
    from service.engine.strategies import STRATEGIES

    context = {"space": problem.space, "objectives": [m for m, _ in problem.objectives]}
    return STRATEGIES.get(method)(options).make_sampler(seed=seed, context=context)


def run_one(
    problem: Problem, method: str, seed: int, budget: int, ask_factor: int, options: dict
) -> dict:
    """Search until ``budget`` unique evaluable archs; the order they were evaluated in."""
    import optuna

    from service.engine.stages import single_stage_view
    from service.engine.valid_ask import ask_valid

    view = single_stage_view(problem.space)
    study = optuna.create_study(directions=problem.directions,
                                sampler=make_sampler(method, problem, seed, options))
    order: list[tuple] = []
    seen: set[tuple] = set()
    asks = 0
    start = time.process_time()
    invalid = 0
    while len(order) < budget and asks < ask_factor * budget:
        # As the service's runner does: archs without a row are re-asked, never evaluations.
        trial, arch, skipped = ask_valid(study, view, problem.space, seed=seed)
        asks += 1 + skipped
        invalid += skipped
        key = tuple(arch[p] for p in problem.params)
        values = problem.rows[key]
        if key not in seen:
            seen.add(key)
            order.append(key)
        for i, v in enumerate(problem.violations[key]):  # as the runner sets them
            trial.set_constraint(f"{i}:{problem.constraints[i][0]}", v)
        study.tell(trial, list(values))
    return {"order": order, "asks": asks, "invalid_asks": invalid,
            "cpu_s": time.process_time() - start}


def curves(problem: Problem, order: list[tuple], budgets: list[int]) -> dict:
    recall, hv, infeasible = [], [], []
    hits = bad = 0
    # The evaluated archs' front, kept incrementally: the hypervolume of a prefix is that of
    # its front, and recomputing the front of every prefix is quadratic in long runs.
    front: list[tuple[float, ...]] = []
    for key in order:
        hits += key in problem.true_front
        recall.append(hits / len(problem.true_front))
        values = problem.rows[key]
        bad += not problem.feasible(key)
        infeasible.append(bad)
        if not problem.feasible(key):  # never on the front (and HV 0 before a feasible one)
            hv.append(hv[-1] if hv else 0.0)
        elif not any(problem.dominates(f, values) or f == values for f in front):
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
        "infeasible_share": {b: at(infeasible, b) / min(b, max(len(order), 1)) for b in budgets},
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
                     "asks": r["asks"], "invalid_asks": r["invalid_asks"], "cpu_s": r["cpu_s"],
                     "evals": len(r["order"])})
    return {
        "recall": {b: median([r["recall"][b] for r in runs]) for b in budgets},
        "hv_ratio": {b: median([r["hv_ratio"][b] for r in runs]) for b in budgets},
        **{mark: median([r[mark] for r in runs]) for mark in MARKS},
        **({"infeasible_share": {b: median([r["infeasible_share"][b] for r in runs])
                                 for b in budgets}} if problem.constraints else {}),
        "s_per_eval": median([r["cpu_s"] / max(r["evals"], 1) for r in runs]),
        "evals_cap": cap,
        "evals": median([r["evals"] for r in runs]),
        "asks": median([r["asks"] for r in runs]),
        "invalid_asks": median([r["invalid_asks"] for r in runs]),
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
    from problems import PROBLEMS, prepare

    table = args.data_dir / TABLE_NAME
    if not args.problems and not table.is_file():
        print(json.dumps({"skipped": f"{table} not found (NAS-Bench-Graph table absent)"}))
        return 0
    skipped = {n: why for n in args.datasets if n in PROBLEMS and (why := prepare(PROBLEMS[n]))}
    args.datasets = [n for n in args.datasets if n not in skipped]
    from problems import data_dirs

    os.environ["PARETONAS_DATA_DIRS"] = os.pathsep.join([str(args.data_dir.resolve()),
                                                          data_dirs()])
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
        "datasets": {}, **({"skipped": skipped} if skipped else {}),
    }
    for dataset in args.datasets:
        problem = Problem(dataset)
        signs = [-1 if d == "maximize" else 1 for d in problem.directions]
        entry: dict[str, Any] = {
            "split": problem.split, "objectives": dict(problem.objectives),
            **({"constraints": {m: f"<= {c:g}" for m, c in problem.constraints},
                "feasible_share": round(problem.feasible_share, 4)}
               if problem.constraints else {}),
            "archs": len(problem.rows), "true_front": len(problem.true_front),
            "chance_level_on_front": problem.n_chance_on_front,
            "reference_point": [round(float(s * r), 5)
                                for s, r in zip(signs, problem.reference, strict=True)],
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
                for k in ("recall", "hv_ratio", "infeasible_share"):
                    if k in m:
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
    """The medians as Markdown: one table per split (dev, test; earlier runs' entries have no
    split), one row per problem and method."""
    budgets = out["budgets"]
    constrained = any("constraints" in d for d in out["datasets"].values())
    head = (["problem", "method"] + [f"recall@{b}" for b in budgets]
            + [f"HV@{b}" for b in budgets] + ["evals to HV 0.99", "evals to recall 0.5"]
            + ([f"infeasible@{budgets[-1]}"] if constrained else []) + ["s/eval"])

    def cell(v: Any, cap: int) -> str:
        return f"> {cap}" if v is None else f"{v:g}"

    blocks = []
    for split in ("dev", "test", None):
        rows = [(ds, d) for ds, d in out["datasets"].items() if d.get("split") == split]
        if not rows:
            continue
        lines = [f"{split or 'problems'}:", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]
        for ds, d in rows:
            for method, m in d["methods"].items():
                row = [ds, method] + [f"{m['recall'][b]:.2f}" for b in budgets]
                row += [f"{m['hv_ratio'][b]:.3f}" for b in budgets]
                row += [cell(m[mark], m["evals_cap"]) for mark in MARKS]
                if constrained:
                    share = m.get("infeasible_share", {}).get(budgets[-1])
                    row.append("" if share is None else f"{share:.2f}")
                row.append(f"{m['s_per_eval']:.3f}" if "s_per_eval" in m else "")
                lines.append("| " + " | ".join(row) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


if __name__ == "__main__":
    raise SystemExit(main())
