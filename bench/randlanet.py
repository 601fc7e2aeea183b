"""RandLA-Net / SSS3D figures, printed as one JSON document.

1. ``knn``: neighbour search, torch (chunked matmul + topk) vs scipy cKDTree; median ms.
2. ``weight_sharing``: a supernet trained once (sandwich rule) and its subnets evaluated with
   inherited weights (as they are, and with BatchNorm statistics recalibrated on 4 training
   scenes), vs training each subnet from scratch for the same number of steps; the search time
   saved for N evaluated archs (each recalibrated, then evaluated; SSS3D reports 99.67%).
3. ``two_stage``: single-stage vs two-stage search (StudyRunner, NSGA-II, miou vs macs) over
   several seeds; subnets' BatchNorm recalibrated on 4 scenes before scoring. Time axis = the
   measured evaluation seconds of each trial's arch (each arch is evaluated once and its time
   re-used across runs, so the runs are comparable and the bench is affordable; ``--workdir``
   keeps the evaluations for the next run). Hypervolume reference: the nadir of the front of
   every arch any run evaluated (``--reference space``: miou 0 and the largest subnet's macs).
   Reports, for each stage-1 budget share, the time two-stage needs to reach 95% and 100% of
   the single-stage final hypervolume relative to single-stage (a seed that never reaches it
   counts as slower than any that did), and both hypervolumes at 25/50/100% of the
   single-stage time; medians over seeds (SSS3D: two-stage needs 54% of the time). Archs that
   differ only in the dims of layers beyond their depth are one network, evaluated once, as in
   the service. ``--stage2-space`` picks the two-stage study's ``stage2_space``; ``--space large``
   searches a 4-layer space of 2.0e7 archs (RandLA-Net's depth; SSS3D's space is larger still)
   instead of the default 3-layer one of 2.8e5.

Synthetic scenes (``search_spaces.randlanet.synthetic``) in a temporary folder; CPU, 1 thread.
``--quick`` shrinks everything for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_spaces.base import Arch, ArchError  # noqa: E402
from search_spaces.randlanet.checkpoint import save_supernet  # noqa: E402
from search_spaces.randlanet.data import load_split  # noqa: E402
from search_spaces.randlanet.neighbors import knn_kdtree, knn_torch  # noqa: E402
from search_spaces.randlanet.space import RandLANetSpace  # noqa: E402
from search_spaces.randlanet.synthetic import write_dataset  # noqa: E402
from search_spaces.randlanet.train import (  # noqa: E402
    sandwich_plan,
    train_from_scratch,
    train_steps,
)
from surrogate.pareto import hypervolume, pareto_mask  # noqa: E402

log = logging.getLogger("bench.randlanet")

SPACE = {
    "max_widths": [16, 32, 64],
    "width_fractions": [0.25, 0.5, 0.75, 1.0],
    "depths": [2, 3],
    "num_points": [512, 1024, 2048],
    "ratios": [4, 3, 2],
    "ks": [4, 8, 16],
    "num_classes": 4,
}
QUICK_SPACE = {**SPACE, "max_widths": [8, 16, 32], "num_points": [256, 512, 1024],
               "width_fractions": [0.5, 1.0]}
# closer to SSS3D's setting (RandLA-Net's four encoder layers; their space has 2.9e17 archs):
# 4 x 3^4 x 3^4 x 3 x 4^4 = 2.0e7 archs, of which 26,244 stage-1 (sampling) configurations
LARGE_SPACE = {**SPACE, "max_widths": [16, 32, 64, 128], "depths": [2, 3, 4],
               "num_points": [512, 1024, 2048, 4096]}
SPACES = {"small": SPACE, "large": LARGE_SPACE}


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


# --- 1. neighbour search --------------------------------------------------------------------
def bench_knn(sizes: list[int], k: int, repeats: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    rows = []
    for n in sizes:
        pts = torch.rand(1, n, 3, generator=gen) * 4
        times = {}
        for name, fn in (("torch", knn_torch), ("kdtree", knn_kdtree)):
            fn(pts, pts, k)
            times[name] = median([timed(fn, pts, pts, k)[1] * 1e3 for _ in range(repeats)])
        rows.append({"points": n, "k": k, "torch_ms": round(times["torch"], 3),
                     "kdtree_ms": round(times["kdtree"], 3),
                     "kdtree_speedup": round(times["torch"] / times["kdtree"], 2)})
    faster = "kdtree" if all(r["kdtree_speedup"] > 1 for r in rows) else "mixed"
    return {"rows": rows, "faster": faster, "repeats": repeats}


# --- 2. weight sharing vs from scratch -----------------------------------------------------
def bench_sharing(space: RandLANetSpace, train, val, *, steps: int, batch: int, n_archs: int,
                  seed: int) -> dict:
    lr = 0.01
    losses, t_super = timed(train_steps, space.net, train, sandwich_plan(space, 2),
                            steps=steps, batch=batch, lr=lr, seed=seed)
    rng = np.random.default_rng(seed + 1)
    archs = []
    while len(archs) < n_archs:
        arch = space.sample(rng)
        try:
            space.validate(arch)
            archs.append(arch)
        except ArchError:
            continue
    rows = []
    for i, arch in enumerate(archs):
        space.forget_samples()  # timed cold: neighbourhoods searched, none kept from before
        inherited, t_eval = timed(space.score, arch, val)
        calibrated, t_cal = timed(space.calibrated, arch, train[:4])
        recal = space.score(arch, val, calibrated)
        model, t_train = timed(train_from_scratch, space, arch, train, steps=steps,
                               batch=batch, lr=lr, seed=seed + 10 + i)
        scratch = space.score(arch, val, model)
        rows.append({"arch": arch.to_dict(), "miou_inherited": round(inherited["miou"], 4),
                     "miou_inherited_bn_recalibrated": round(recal["miou"], 4),
                     "recalibration_s": round(t_cal, 3),
                     "miou_scratch": round(scratch["miou"], 4), "eval_s": round(t_eval, 3),
                     "scratch_train_s": round(t_train, 3)})
    eval_s = median([r["eval_s"] for r in rows])
    recal_s = median([r["recalibration_s"] for r in rows])
    train_s = median([r["scratch_train_s"] for r in rows])
    saved = {}
    for n in (50, 100, 500):  # the search recalibrates BatchNorm before each evaluation
        shared = t_super + n * (recal_s + eval_s)
        scratch_total = n * (train_s + eval_s)
        saved[str(n)] = round(100 * (1 - shared / scratch_total), 2)
    return {
        "supernet_train_s": round(t_super, 2), "steps": steps, "batch": batch,
        "supernet_loss_first_last": [round(losses[0], 4), round(float(np.mean(losses[-10:])), 4)],
        "median_eval_s": round(eval_s, 3), "median_recalibration_s": round(recal_s, 3),
        "median_scratch_train_s": round(train_s, 3),
        "median_miou_inherited": round(median([r["miou_inherited"] for r in rows]), 4),
        "median_miou_inherited_bn_recalibrated": round(
            median([r["miou_inherited_bn_recalibrated"] for r in rows]), 4),
        "median_miou_scratch": round(median([r["miou_scratch"] for r in rows]), 4),
        "search_time_saved_pct_for_n_archs": saved,
        "archs": rows,
    }


# --- 3. single-stage vs two-stage -----------------------------------------------------------
class Memo:
    """Evaluates each arch once, shared by every run; with a ``path`` the evaluations are kept
    on disk (``--workdir``) so a re-run reuses them.

    Per arch it keeps the values, the network's seconds (``seconds``: extraction, BatchNorm
    recalibration, forward passes, with the sampled scenes' neighbourhoods already there) and
    which geometry entries it needs (``needs``: each sampled scene, its neighbour indices and
    position encodings per level, its nearest-point map), each entry's cost measured once
    (``entry_s``). A run charges an entry the first time one of its trials needs it, as the
    service's space keeps them (``geometry_cache``): archs sharing sampling parameters search
    neighbours once per study."""

    FORMAT = "v2"  # v1 kept one number of seconds per arch

    def __init__(self, path: Path | None = None, tag: str = "") -> None:
        self.path, self.tag = path, f"{self.FORMAT} {tag}"
        self.values: dict[str, dict[str, float]] = {}
        self.seconds: dict[str, float] = {}
        self.needs: dict[str, list[str]] = {}
        self.entry_s: dict[str, float] = {}
        self.archs: dict[str, dict] = {}
        if path is not None and path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("tag") == self.tag and "archs" in saved:
                self.values, self.seconds = saved["values"], saved["seconds"]
                self.needs, self.entry_s = saved["needs"], saved["entry_s"]
                self.archs = saved["archs"]

    def save(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps(
                {"tag": self.tag, "values": self.values, "seconds": self.seconds,
                 "needs": self.needs, "entry_s": self.entry_s, "archs": self.archs}))

    def wrap(self, space: RandLANetSpace) -> None:
        """Route the space's evaluate/cost through the memo, keyed like the runner keys trials:
        by canonical arch, so equivalent archs are one evaluation (stored entries re-keyed)."""
        evaluate, cost = space.evaluate, space.cost
        keys = {k: space.canonical(Arch(a)).key() for k, a in self.archs.items()}
        for table in (self.values, self.seconds, self.needs, self.archs):
            table.update({keys[k]: table.pop(k) for k in list(table)})

        def memo_evaluate(arch, metrics, *, context=None):
            key = space.canonical(arch).key()
            if key not in self.values:
                space.forget_samples()  # cold: every geometry entry computed and timed
                vals = evaluate(arch, ["miou", "oa"])
                needs = []
                # the seed names the scene (validation i: eval_seed + i, calibration:
                # eval_seed + 10000 + i), num_points the sample
                for num_points, seed, sample in space.kept_samples():
                    name = f"{num_points}@{seed}"
                    for part, secs in [*sample.seconds.items(),
                                       *sample.geometry.seconds.items()]:
                        entry = f"{name}:{part}"
                        needs.append(entry)
                        self.entry_s.setdefault(entry, secs)
                warm, secs = timed(evaluate, arch, ["miou", "oa"])
                assert warm == vals, "kept neighbourhoods changed a result"
                costs, csecs = timed(cost, arch)
                self.values[key] = {**vals, **costs}
                self.seconds[key] = secs + csecs
                self.needs[key] = sorted(needs)
                self.archs[key] = arch.to_dict()
            return {m: self.values[key][m] for m in metrics}

        def memo_cost(arch):
            memo_evaluate(arch, [])
            return {m: self.values[space.canonical(arch).key()][m] for m in space.cost_metrics()}

        space.evaluate = memo_evaluate  # type: ignore[method-assign]
        space.cost = memo_cost  # type: ignore[method-assign]

    def trial_seconds(self, key: str, kept: set[str]) -> float:
        """The arch's seconds in a run that has already computed the ``kept`` entries (which
        then holds this arch's too)."""
        new = [e for e in self.needs[key] if e not in kept]
        kept.update(new)
        return self.seconds[key] + sum(self.entry_s[e] for e in new)


def run_search(spec: dict, memo: Memo) -> list[dict]:
    from service.engine.records import MemoryStore
    from service.engine.resolve import resolve_spec
    from service.engine.runner import StudyRunner
    from service.engine.spec import StudySpec

    resolved = resolve_spec(StudySpec.model_validate(spec))
    memo.wrap(resolved.space)  # type: ignore[arg-type]
    store = MemoryStore()
    StudyRunner(resolved, store).run()
    out, kept = [], set()  # kept: the geometry entries this run (study) has computed
    for t in sorted(store.trials, key=lambda r: r.number):
        fresh = t.state == "complete" and "duplicate_of" not in t.info
        out.append({"values": t.values, "stage": t.stage, "state": t.state,
                    "seconds": memo.trial_seconds(t.arch_key, kept) if fresh else 0.0})
    return out


def losses_of(values: dict[str, float], macs_ref: float) -> list[float]:
    """The bench's two objectives as losses: -miou and macs / macs of the largest subnet."""
    return [-values["miou"], values["macs"] / macs_ref]


def pooled_nadir(memo: Memo, macs_ref: float) -> list[float]:
    """Reference point at the nadir of the front of every arch any run evaluated (the best
    known front): its worst miou and its worst macs. With the whole-space reference (miou 0,
    largest macs) a few random small subnets already hold most of the hypervolume and every
    search looks converged after a handful of trials, which says nothing about the search."""
    loss = np.array([losses_of(v, macs_ref) for v in memo.values.values()])
    front = loss[pareto_mask(loss)]
    return front.max(axis=0).tolist()


def hv_curve(trials: list[dict], macs_ref: float, reference: list[float],
             axis: str = "seconds") -> tuple[np.ndarray, np.ndarray]:
    """(cumulative seconds, or evaluations with axis="evals"; hypervolume) after each trial."""
    times, hvs, losses = [], [], []
    clock = 0.0
    for t in trials:
        clock += t["seconds"] if axis == "seconds" else float(t["seconds"] > 0)
        if t["state"] == "complete":
            losses.append(losses_of(t["values"], macs_ref))
        hv = hypervolume(np.array(losses), np.array(reference)) if losses else 0.0
        times.append(clock)
        hvs.append(hv)
    return np.array(times), np.array(hvs)


def time_to(times: np.ndarray, hvs: np.ndarray, target: float) -> float | None:
    hit = np.nonzero(hvs >= target - 1e-12)[0]
    return float(times[hit[0]]) if hit.size else None


def hv_at(times: np.ndarray, hvs: np.ndarray, t: float) -> float:
    done = np.nonzero(times <= t + 1e-12)[0]
    return float(hvs[done[-1]]) if done.size else 0.0


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def _compare(ts, hs, tt, ht, es, et) -> dict:
    """One seed: two-stage (tt, ht) against single-stage (ts, hs); es/et: their evaluation
    counts after each trial (SSS3D's time on a GPU tracks evaluations more than subnet size)."""
    out: dict[str, Any] = {"single_final_hv": round(float(hs[-1]), 4),
                           "two_final_hv": round(float(ht[-1]), 4),
                           "single_total_s": round(float(ts[-1]), 2),
                           "two_total_s": round(float(tt[-1]), 2)}
    for pct in (95, 100):
        target = pct / 100 * hs[-1]
        t_single, t_two = time_to(ts, hs, target), time_to(tt, ht, target)
        out[f"to_{pct}pct"] = {"single_s": None if t_single is None else round(t_single, 2),
                               "two_s": None if t_two is None else round(t_two, 2),
                               "ratio": _ratio(t_two, t_single)}
        e_single, e_two = time_to(es, hs, target), time_to(et, ht, target)
        out[f"evals_to_{pct}pct"] = {"single": e_single, "two": e_two,
                                     "ratio": _ratio(e_two, e_single)}
    for frac in (0.25, 0.5, 1.0):
        t = frac * ts[-1]
        out[f"hv_at_{int(frac * 100)}pct_single_time"] = {
            "single": round(hv_at(ts, hs, t), 4), "two": round(hv_at(tt, ht, t), 4)}
    return out


def _median_ratio(xs: list[float | None]) -> float | None:
    """Median over seeds where a run that never reached the mark counts as slower than every
    run that did (None: the median itself did not reach it)."""
    m = median([np.inf if x is None else x for x in xs])
    return None if np.isinf(m) else round(m, 3)


def bench_two_stage(options: dict, macs_ref: float, *, seeds: list[int], trials: int,
                    fractions: list[float], population: int, strategy: str = "nsga2",
                    reference: str = "pooled", stage2_space: str = "front_configs",
                    seed_extremes: bool = False, memo_path: Path | None = None) -> dict:
    checkpoint = memo_path.parent / options["checkpoint"] if memo_path else None
    memo = Memo(memo_path, tag=json.dumps(options, sort_keys=True) + (
        str(checkpoint.stat().st_mtime_ns) if checkpoint and checkpoint.exists() else ""))
    base = {
        "name": "bench-randlanet",
        "search_space": {"name": "randlanet", "options": options},
        "objectives": [{"metric": "miou", "direction": "maximize"},
                       {"metric": "macs", "direction": "minimize"}],
        "strategy": {"name": strategy, "options": {
            "nsga2": {"population_size": population}, "tpe": {"n_startup_trials": population},
            "surrogate": {"n_initial": population}}[strategy]},
        "budget": {"trials": trials},
        "seed_extremes": seed_extremes,
    }
    runs = {}
    for seed in seeds:
        runs[seed, None] = run_search({**base, "seed": seed}, memo)
        for frac in fractions:
            runs[seed, frac] = run_search(
                {**base, "seed": seed, "stages": 2, "stage1_fraction": frac,
                 "stage2_space": stage2_space}, memo)
    memo.save()
    ref = pooled_nadir(memo, macs_ref) if reference == "pooled" else [0.0, 1.0]
    rows: dict[float, list[dict]] = {f: [] for f in fractions}
    for seed in seeds:
        ts, hs = hv_curve(runs[seed, None], macs_ref, ref)
        es, _ = hv_curve(runs[seed, None], macs_ref, ref, axis="evals")
        for frac in fractions:
            tt, ht = hv_curve(runs[seed, frac], macs_ref, ref)
            et, _ = hv_curve(runs[seed, frac], macs_ref, ref, axis="evals")
            rows[frac].append({"seed": seed, **_compare(ts, hs, tt, ht, es, et)})
    summary = {}
    for frac, per_seed in rows.items():
        summary[f"stage1_fraction={frac}"] = {
            **{f"median_time_ratio_to_{p}pct": _median_ratio(
                [r[f"to_{p}pct"]["ratio"] for r in per_seed]) for p in (95, 100)},
            **{f"median_evals_ratio_to_{p}pct": _median_ratio(
                [r[f"evals_to_{p}pct"]["ratio"] for r in per_seed]) for p in (95, 100)},
            **{f"seeds_two_stage_reached_{p}pct": sum(
                r[f"to_{p}pct"]["two_s"] is not None for r in per_seed) for p in (95, 100)},
            **{f"median_hv_at_{p}pct_single_time": {
                k: round(median([r[f"hv_at_{p}pct_single_time"][k] for r in per_seed]), 4)
                for k in ("single", "two")} for p in (25, 50, 100)},
            "median_total_s": {
                "single": round(median([r["single_total_s"] for r in per_seed]), 2),
                "two": round(median([r["two_total_s"] for r in per_seed]), 2)},
            "per_seed": per_seed,
        }
    return {
        "seeds": seeds, "trials": trials, "stage2_space": stage2_space,
        "seed_extremes": seed_extremes,
        "strategy": f"{strategy}(population/startup/initial={population})",
        "objectives": ["miou max", "macs min (/ macs of the largest subnet)"],
        "reference": {"kind": reference, "point": [round(x, 4) for x in ref],
                      "as": "(-miou, macs / macs of the largest subnet)"},
        "time_ratio": "two-stage seconds / single-stage seconds to reach the given share of the "
                      "single-stage final hypervolume (same seed); < 1 means two-stage is faster",
        "unique_archs_evaluated": len(memo.values),
        **summary,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--sections", default="knn,sharing,search")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--fractions", default="0.1,0.25,0.5", help="stage-1 budget shares to try")
    parser.add_argument("--strategy", choices=("nsga2", "tpe", "surrogate"),
                        default="nsga2")
    parser.add_argument("--space", choices=tuple(SPACES), default="small",
                        help="the search space of the search section: small (2.8e5 archs, "
                        "3 layers) or large (2.0e7 archs, 4 layers, as RandLA-Net)")
    parser.add_argument("--seed-extremes", action="store_true",
                        help="both searches start with their smallest and largest arch")
    parser.add_argument("--stage2-space", choices=("front_configs", "front_values"),
                        default="front_configs", help="the two-stage study's stage2_space")
    parser.add_argument("--reference", choices=("pooled", "space"), default="pooled",
                        help="hypervolume reference: nadir of the front of all evaluated archs "
                        "(default) or the whole space's worst point (miou 0, largest macs)")
    parser.add_argument("--workdir", help="keep the scenes, the trained supernet and the arch "
                        "evaluations here and reuse them on the next run (default: a temporary "
                        "folder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    sections = set(args.sections.split(","))
    quick = args.quick
    out: dict[str, Any] = {"bench": "randlanet", "threads": 1, "quick": quick}
    if "knn" in sections:
        out["knn"] = bench_knn([1024, 4096] if quick else [1024, 4096, 16384], 16,
                               3 if quick else 7)
    with tempfile.TemporaryDirectory() as tmp:
        # quick and full runs train different supernets on different scenes: keep them apart
        root = Path(args.workdir or tmp).resolve() / (
            "quick" if quick else "full" if args.space == "small" else args.space)
        root.mkdir(parents=True, exist_ok=True)
        os.environ["PARETONAS_DATA_DIRS"] = str(root)
        n_train, n_val = (6, 2) if quick else (24, 4)
        if not (root / "scenes").is_dir():
            write_dataset(root / "scenes", n_train=n_train, n_val=n_val,
                          points=2048 if quick else 8192, seed=0)
        ckpt = root / "sn.safetensors"
        space_opts = QUICK_SPACE if quick else SPACES[args.space]
        space = RandLANetSpace({**space_opts, "init_seed": 0})
        train = load_split(root / "scenes", "train", 4)
        val = load_split(root / "scenes", "val", 4)
        out["space"] = {"options": space_opts, "size": space.size()}
        if "sharing" in sections or ("search" in sections and not ckpt.exists()):
            out["weight_sharing"] = bench_sharing(
                space, train, val, steps=20 if quick else 200, batch=2,
                n_archs=2 if quick else 3, seed=0)
            save_supernet(space.net, ckpt)
        if "search" in sections:
            options = {k: v for k, v in space_opts.items()
                       if k not in ("max_widths", "num_classes")}
            # inherited BatchNorm statistics are off for subnets; recalibrating them (as in
            # Once-for-All) is what makes inherited accuracy rank subnets (weight_sharing)
            options.update(checkpoint="sn.safetensors", data="scenes", val_scenes=n_val,
                           calibrate_bn=4)
            macs_ref = space.cost(space.largest())["macs"]
            out["two_stage"] = bench_two_stage(
                options, macs_ref, seeds=list(range(2 if quick else args.seeds)),
                trials=16 if quick else args.trials,
                fractions=[float(f) for f in args.fractions.split(",")],
                population=4 if quick else 10, strategy=args.strategy,
                reference=args.reference, stage2_space=args.stage2_space,
                seed_extremes=args.seed_extremes,
                memo_path=root / "evaluations.json" if args.workdir else None)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
