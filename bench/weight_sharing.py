"""Weight sharing vs training: does a subnet's inherited-weight accuracy rank it the way its
accuracy after training does? One JSON document, per supernet space.

Subnets: ``--archs`` (>= 12) picked by a rule fixed before any result was seen: 500 archs sampled
with a seeded generator, and for each of ``--archs`` evenly spaced MACs quantiles (0 to 1) the
not yet chosen sample nearest to it; so they span the cost range from near the smallest to near
the largest subnet.

DeepLabV3+ (synthetic VOC of ``search_spaces.deeplabv3plus.demo``, its bench-scale supernet
structure; CPU, 1 thread). For each supernet training recipe (``RECIPES``; trained once and
cached under ``--workdir``):

* inherited mIoU (weights sliced out, as the search scores candidates), with and without
  BatchNorm recalibration on ``--recal-batches`` training batches, on the full validation split
  and on the validation subset the search uses (stratified, ``--subset-size`` images);
* stand-alone mIoU: the same subnet trained from scratch on the training split for a fixed budget
  (``--scratch-epochs``, AdamW, the supernet's augmentation), once per subnet whatever the recipe;
  and fine-tuned from its inherited (recalibrated) weights for ``--finetune-epochs``;
* Kendall tau / Spearman rho (scipy.stats) inherited vs stand-alone; tau of MACs alone vs scratch
  (the ranking any weight sharing must beat) and, with ``--noise-seeds 2``, tau between two
  from-scratch seeds (how well the stand-alone metric ranks itself);
* inherited-with-recalibration mIoU as a share of scratch mIoU; CPU seconds of each path.

``plain`` recipes are FMAS's own path: a plain DeepLabV3+ (the largest network only) trained as
the "pretrained" model, then channels reordered by importance on loading and subnets sliced
without any supernet training.

RandLA-Net (synthetic rooms, ``bench/randlanet.py``'s space): for each supernet recipe
(``RANDLA_RECIPES``: sandwich or Once-for-All progressive shrinking, with or without in-place
distillation; trained once and cached), inherited mIoU (with and without BN recalibration on 4
training scenes) on all validation scenes and on the search's first 4, vs each subnet trained
from scratch for ``--randla-scratch-steps`` (one budget for all; with ``--noise-seeds 2`` a
second seed says how well that reference ranks itself).
BERT (MiniLM-L6, stdlib-topics): ``fidelity`` and inherited task accuracy (logistic head on frozen
features) vs accuracy after fine-tuning each subnet on the task.

Figures are in-sample for the recipes (chosen on these subnets); the subnet choice is not.
``--arch-seed 1`` draws another set of subnets by the same rule: the recipes chosen on seed 0,
measured there, are out of sample.
Without ``--full`` a quick run (one recipe per space, short budgets) that ``make bench`` can
afford.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.segmentation import mean_iou  # noqa: E402
from search_spaces.base import Arch, ArchError, SearchSpace  # noqa: E402
from search_spaces.deeplabv3plus import demo  # noqa: E402

log = logging.getLogger("bench.weight_sharing")

#: Supernet training recipes (TrainConfig fields). ``plain-*`` train the largest network only.
RECIPES: dict[str, dict[str, Any]] = {
    "sandwich-distill-12": {"epochs": 12, "schedule": "sandwich", "distill": True},
    "sandwich-nodistill-12": {"epochs": 12, "schedule": "sandwich", "distill": False},
    "sandwich-distill-36": {"epochs": 36, "schedule": "sandwich", "distill": True},
    "progressive-distill-36": {"epochs": 36, "schedule": "progressive", "distill": True,
                               "phase_epochs": [6, 10, 10, 10]},
    "progressive-distill-72": {"epochs": 72, "schedule": "progressive", "distill": True,
                               "phase_epochs": [12, 20, 20, 20]},
    "progressive-distill-144": {"epochs": 144, "schedule": "progressive", "distill": True,
                                "phase_epochs": [24, 40, 40, 40]},
    "plain-36": {"epochs": 36, "schedule": "largest", "distill": False},
}
QUICK_RECIPES = ("sandwich-distill-12",)


def key_of(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def cpu_timed(fn, *args, **kwargs) -> tuple[Any, float]:
    """Result and CPU seconds of this process (1 torch thread): on a shared machine CPU time
    measures the work, wall time mostly the neighbours."""
    t0 = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - t0


def spread_archs(space: SearchSpace, n: int, *, seed: int = 0, pool: int = 500) -> list[Arch]:
    """``n`` archs spread over the MACs range (the rule in the module docstring); infeasible
    samples are skipped."""
    rng = np.random.default_rng(seed)
    sampled, seen, macs_list = [], set(), []
    for _ in range(50 * pool):
        if len(sampled) == pool:
            break
        arch = space.sample(rng)
        if arch.key() in seen:
            continue
        seen.add(arch.key())
        try:
            macs_list.append(space.cost(space.validate(arch))["macs"])
        except ArchError:
            continue
        sampled.append(arch)
    macs = np.array(macs_list)
    chosen: list[int] = []
    for q in np.linspace(0, 1, n):
        target = np.quantile(macs, q)
        order = np.argsort(np.abs(macs - target), kind="stable")
        chosen.append(int(next(i for i in order if i not in chosen)))
    return [sampled[i] for i in chosen]


def rank(a: list[float], b: list[float]) -> dict[str, float]:
    tau = stats.kendalltau(a, b)
    rho = stats.spearmanr(a, b)
    return {"kendall_tau": round(float(tau.statistic), 4), "tau_p": round(float(tau.pvalue), 4),
            "spearman_rho": round(float(rho.statistic), 4)}


class Memo:
    """Measured values kept on disk under the workdir (so a re-run reuses them and says so).
    Several bench processes may share it (each value is merged in under a file lock)."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = self._read()
        self.hits = 0

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str, compute) -> Any:
        if key not in self.data:
            self.data.update(self._read())  # another process may have measured it meanwhile
        if key in self.data:
            self.hits += 1
            return self.data[key]
        value = compute()
        with locked(self.path.with_suffix(".lock")):
            self.data.update(self._read())
            self.data[key] = value
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=0, sort_keys=True))
            tmp.replace(self.path)
        return value


@contextmanager
def locked(path: Path):
    """An exclusive advisory lock on ``path`` (created) for the ``with`` block."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- DeepLabV3+ -------------------------------------------------------------------------------
def deeplab_data(root: Path) -> str:
    from search_spaces.deeplabv3plus.synth import generate

    data_dir = f"voc-{key_of(demo.DATA)}"
    if not (root / data_dir / ".complete").exists():
        generate(root / data_dir, **demo.DATA)
        (root / data_dir / ".complete").write_text(json.dumps(demo.DATA))
    return data_dir


def deeplab_supernet(root: Path, data_dir: str, recipe: dict[str, Any]) -> dict[str, Any]:
    """Train (or find cached) the supernet of ``recipe``; its checkpoint name and train time."""
    cfg = {"batch_size": 8, "num_random": 2, "seed": 0, **recipe}
    name = f"supernet-{key_of(demo.STRUCTURE, demo.DATA, cfg)}.pt"
    done = root / (name + ".json")
    with locked(root / (name + ".lock")):  # another bench process may be training it
        if not done.exists():
            _train_deeplab(root, data_dir, name, cfg, done)
    return {"checkpoint": name, **json.loads(done.read_text())}


def _train_deeplab(root: Path, data_dir: str, name: str, cfg: dict[str, Any], done: Path
                   ) -> None:
    from search_spaces.deeplabv3plus.data import VOCSegmentation
    from search_spaces.deeplabv3plus.space import DeepLabOptions, DeepLabSpace
    from search_spaces.deeplabv3plus.training import TrainConfig, train_supernet

    log.info("training supernet %s (%s)", name, cfg)
    space = DeepLabSpace(DeepLabOptions(**demo.STRUCTURE))
    dataset = VOCSegmentation(root / data_dir, "train", num_classes=demo.STRUCTURE["num_classes"])
    t0 = time.process_time()
    summary = train_supernet(space, dataset, root / name, TrainConfig(**cfg), resume=True)
    done.write_text(json.dumps({"cpu_s": time.process_time() - t0, "wall_s": summary["seconds"],
                                "steps": summary["steps"], "config": cfg}))


def miou_scores(conf: np.ndarray, subset: np.ndarray) -> dict[str, float]:
    """mIoU on the full validation split and on the search's subset, from per-image
    confusions."""
    return {"full": float(mean_iou(conf.sum(0))), "subset": float(mean_iou(
        conf[subset].sum(0)))}


def deeplab_scratch(memo: Memo, probe: Any, arch: Arch, *, seed: int, epochs: int
                    ) -> dict[str, Any]:
    """``arch`` trained from scratch (fresh initialisation of ``seed``) for ``epochs``."""
    from search_spaces.deeplabv3plus.training import train_model

    def measure() -> dict[str, Any]:
        torch.manual_seed(seed)
        model = probe.build_static(arch)
        stats_, cpu = cpu_timed(train_model, model, probe.train.dataset,
                                resolution=int(arch["resolution"]), epochs=epochs,
                                batch_size=8, seed=seed)
        conf = probe.confusions(arch, np.arange(len(probe.val.dataset)), model=model)
        return {**miou_scores(conf, probe.subset()), "train_cpu_s": cpu,
                "steps": stats_["steps"]}

    data_key = key_of(demo.DATA, demo.STRUCTURE)
    return memo.get(f"deeplab/scratch/{data_key}/{arch.key()}/{epochs}/{seed}", measure)


_SPACES: dict[str, tuple[Any, Any]] = {}


def deeplab_inherited(memo: Memo, base: dict[str, Any], checkpoint: str, arch: Arch, *,
                      schedule: str, finetune_epochs: int, recal_batches: int
                      ) -> dict[str, Any]:
    """``arch`` with weights inherited from ``checkpoint``: mIoU as is, BN-recalibrated, and
    after fine-tuning the recalibrated subnet; CPU seconds of each."""
    from search_spaces.deeplabv3plus.space import DeepLabSpace
    from search_spaces.deeplabv3plus.training import train_model

    # a plain model (FMAS's pretrained one) is reordered by importance before slicing
    opts = {**base, "checkpoint": checkpoint,
            "reorder": "always" if schedule == "largest" else "auto"}

    def measure() -> dict[str, Any]:
        # one space per checkpoint, as in a study: its supernet and images load once (not a
        # candidate's cost)
        key = key_of(opts)
        if key not in _SPACES:
            _SPACES[key] = (DeepLabSpace(opts),
                            DeepLabSpace({**opts, "bn_recalibration_batches": recal_batches}))
            for space in _SPACES[key]:
                space.evaluate(space.largest(), ["miou"])
        plain, recal = _SPACES[key]
        subset, everything = plain.subset(), np.arange(len(plain.val.dataset))
        model, t_extract = cpu_timed(plain.extract, arch)
        _, t_eval = cpu_timed(plain.confusions, arch, subset, model=model)
        conf_all = plain.confusions(arch, everything, model=model)
        model, t_recal = cpu_timed(recal.prepare, recal.extract(arch), arch)
        conf_r = recal.confusions(arch, everything, model=model)
        t0 = time.process_time()
        train_model(model, recal.train.dataset, resolution=int(arch["resolution"]),
                    epochs=finetune_epochs, batch_size=8, lr=5e-4, seed=0)
        t_ft = time.process_time() - t0
        conf_f = recal.confusions(arch, everything, model=model)
        return {"plain": miou_scores(conf_all, subset), "recal": miou_scores(conf_r, subset),
                "finetuned": miou_scores(conf_f, subset),
                "extract_eval_subset_cpu_s": t_extract + t_eval, "recal_cpu_s": t_recal,
                "finetune_cpu_s": t_ft}

    # the key of 4 recalibration batches is the one measured before that number was an option
    recal_key = "" if recal_batches == 4 else f"/recal{recal_batches}"
    return memo.get(f"deeplab/inherited/{checkpoint}/{arch.key()}/{base['subset_size']}/"
                    f"{finetune_epochs}{recal_key}", measure)


def deeplab_section(root: Path, args: argparse.Namespace, memo: Memo) -> dict[str, Any]:
    from search_spaces.deeplabv3plus.space import DeepLabSpace

    data_dir = deeplab_data(root)
    base = {**demo.STRUCTURE, "data_dir": data_dir, "subset_size": args.subset_size,
            "subset_selection": "stratified"}
    probe = DeepLabSpace(base)
    archs = spread_archs(probe, args.archs, seed=args.arch_seed)
    n_val = len(probe.val.dataset)
    subset = probe.subset()
    macs = [probe.cost(a)["macs"] for a in archs]

    stand_alone = [[deeplab_scratch(memo, probe, a, seed=s, epochs=args.scratch_epochs)
                    for a in archs] for s in range(args.noise_seeds)]
    scratch_full = [r["full"] for r in stand_alone[0]]
    out: dict[str, Any] = {
        "setup": {"structure": demo.STRUCTURE, "data": demo.DATA, "val_images": n_val,
                  "subset_size": len(subset), "archs": len(archs),
                  "macs_range": [min(macs), max(macs)], "scratch_epochs": args.scratch_epochs,
                  "scratch_optimizer": "adamw lr 2e-3 poly", "finetune_epochs":
                  args.finetune_epochs, "finetune_optimizer": "adamw lr 5e-4 poly",
                  "bn_recalibration_batches": args.recal_batches, "threads": 1},
        "stand_alone": {
            "scratch_miou_full_median": round(median(scratch_full), 4),
            "scratch_train_cpu_s_median": round(median(
                [r["train_cpu_s"] for r in stand_alone[0]]), 2),
            "macs_vs_scratch": rank(macs, scratch_full),
        },
        "recipes": {},
    }
    scratch_mean = None
    if args.noise_seeds > 1:
        # how well the stand-alone metric ranks itself across initialisations; the mean over
        # seeds is the less noisy reference
        out["stand_alone"]["scratch_seed0_vs_seed1"] = rank(
            scratch_full, [r["full"] for r in stand_alone[1]])
        scratch_mean = [float(np.mean([seeds[i]["full"] for seeds in stand_alone]))
                        for i in range(len(archs))]
        out["stand_alone"]["macs_vs_scratch_seed_mean"] = rank(macs, scratch_mean)
    for name in args.recipes:
        recipe = RECIPES[name]
        sn = deeplab_supernet(root, data_dir, recipe)
        rows = [deeplab_inherited(memo, base, sn["checkpoint"], a, schedule=recipe["schedule"],
                                  finetune_epochs=args.finetune_epochs,
                                  recal_batches=args.recal_batches) for a in archs]
        col = {f"{k}_{s}": [r[k][s] for r in rows] for k in ("plain", "recal", "finetuned")
               for s in ("full", "subset")}
        eval_s = median([r["extract_eval_subset_cpu_s"] for r in rows])
        recal_s = median([r["recal_cpu_s"] for r in rows])
        scratch_s = median([r["train_cpu_s"] for r in stand_alone[0]])
        out["recipes"][name] = {
            "recipe": sn["config"], "supernet_train_cpu_s": round(sn["cpu_s"], 1),
            "fmas_plain_pretrained": recipe["schedule"] == "largest",
            "tau_vs_scratch": {
                "inherited_full": rank(col["plain_full"], scratch_full),
                "inherited_recal_full": rank(col["recal_full"], scratch_full),
                "inherited_subset": rank(col["plain_subset"], scratch_full),
                "inherited_recal_subset": rank(col["recal_subset"], scratch_full),
                "finetuned_full": rank(col["finetuned_full"], scratch_full),
            },
            "tau_vs_scratch_seed_mean": None if scratch_mean is None else {
                "inherited_full": rank(col["plain_full"], scratch_mean),
                "inherited_recal_full": rank(col["recal_full"], scratch_mean),
                "inherited_recal_subset": rank(col["recal_subset"], scratch_mean),
            },
            "tau_vs_finetuned": {
                "inherited_recal_full": rank(col["recal_full"], col["finetuned_full"]),
                "inherited_recal_subset": rank(col["recal_subset"], col["finetuned_full"]),
            },
            "miou_full_median": {"inherited": round(median(col["plain_full"]), 4),
                                 "inherited_recal": round(median(col["recal_full"]), 4),
                                 "finetuned": round(median(col["finetuned_full"]), 4),
                                 "scratch": round(median(scratch_full), 4)},
            "recal_share_of_scratch_median": round(median(
                [a / b for a, b in zip(col["recal_full"], scratch_full, strict=True)]), 4),
            "cost_cpu_s": {"inherited_eval_median": round(eval_s, 3),
                           "recal_median": round(recal_s, 3),
                           "finetune_median": round(median(
                               [r["finetune_cpu_s"] for r in rows]), 2),
                           "scratch_train_median": round(scratch_s, 2),
                           "saved_per_candidate": round(1 - (eval_s + recal_s) / scratch_s, 4)},
            "per_arch": [{"macs": int(m), "scratch_full": round(s, 4),
                          "inherited_full": round(p, 4), "inherited_recal_full": round(r, 4),
                          "finetuned_full": round(f, 4)}
                         for m, s, p, r, f in zip(macs, scratch_full, col["plain_full"],
                                                  col["recal_full"], col["finetuned_full"],
                                                  strict=True)],
        }
    return out


# --- RandLA-Net ------------------------------------------------------------------------------
RANDLA_SPACE = {"max_widths": [16, 32, 64], "width_fractions": [0.25, 0.5, 0.75, 1.0],
                "depths": [2, 3], "num_points": [512, 1024, 2048], "ratios": [4, 3, 2],
                "ks": [4, 8, 16], "num_classes": 4}  # bench/randlanet.py's default space
#: 16 validation scenes: the search scores the first ``RANDLA_SEARCH_VAL`` (its default
#: val_scenes), the reference figures use all of them (4 scenes alone rank noisily)
RANDLA_DATA = {"n_train": 24, "n_val": 16, "points": 8192, "seed": 0}
RANDLA_SEARCH_VAL = 4
#: RandLA-Net supernet recipes (``search_spaces.randlanet.train``): Adam lr 0.01, cosine,
#: batch 2, 2 random subnets per step; progressive phases: largest, + sampling (points, ratios,
#: neighbours), + depth, + width.
RANDLA_RECIPES: dict[str, dict[str, Any]] = {
    "sandwich-150": {"steps": 150, "schedule": "sandwich", "distill": False},
    "sandwich-600": {"steps": 600, "schedule": "sandwich", "distill": False},
    "sandwich-distill-600": {"steps": 600, "schedule": "sandwich", "distill": True},
    "progressive-distill-600": {"steps": 600, "schedule": "progressive", "distill": True,
                                "phase_steps": [120, 120, 160, 200]},
    "progressive-distill-40": {"steps": 40, "schedule": "progressive", "distill": True,
                               "phase_steps": [10, 10, 10, 10]},
}
QUICK_RANDLA_RECIPES = ("progressive-distill-40",)


def randlanet_supernet(root: Path, data_dir: str, train: list, recipe: dict[str, Any]
                       ) -> dict[str, Any]:
    """Train (or find cached) the RandLA-Net supernet of ``recipe``; its file and CPU time."""
    from search_spaces.randlanet.checkpoint import save_supernet
    from search_spaces.randlanet.space import RandLANetSpace
    from search_spaces.randlanet.train import shrinking_plan, train_steps

    cfg = {"batch": 2, "lr": 0.01, "n_random": 2, "seed": 0, **recipe}
    name = f"sn-{key_of(RANDLA_SPACE, RANDLA_DATA, cfg)}.safetensors"
    done = root / (name + ".json")
    with locked(root / (name + ".lock")):
        if not done.exists():
            log.info("training RandLA-Net supernet %s (%s)", name, cfg)
            space = RandLANetSpace({**RANDLA_SPACE, "init_seed": cfg["seed"]})
            plan = shrinking_plan(space, cfg["schedule"], cfg["n_random"],
                                  phase_steps=cfg.get("phase_steps"))
            _, cpu = cpu_timed(train_steps, space.net, train, plan, steps=cfg["steps"],
                               batch=cfg["batch"], lr=cfg["lr"], seed=cfg["seed"],
                               distill=cfg["distill"])
            save_supernet(space.net, root / name)
            done.write_text(json.dumps({"cpu_s": cpu, "config": cfg}))
    return {"checkpoint": name, **json.loads(done.read_text())}


def randlanet_section(root: Path, args: argparse.Namespace, memo: Memo) -> dict[str, Any]:
    from search_spaces.randlanet.data import load_split
    from search_spaces.randlanet.space import RandLANetSpace
    from search_spaces.randlanet.synthetic import write_dataset
    from search_spaces.randlanet.train import train_from_scratch

    data_dir = f"scenes-{key_of(RANDLA_DATA)}"
    if not (root / data_dir / ".complete").exists():
        write_dataset(root / data_dir, **RANDLA_DATA)
        (root / data_dir / ".complete").write_text(json.dumps(RANDLA_DATA))
    train = load_split(root / data_dir, "train", RANDLA_SPACE["num_classes"])
    opts = {k: v for k, v in RANDLA_SPACE.items() if k != "num_classes"}
    opts.update(data=data_dir, val_scenes=RANDLA_DATA["n_val"])
    probe = RandLANetSpace(opts)  # random supernet: only the dims, costs and scenes are used
    archs = spread_archs(probe, args.archs, seed=args.arch_seed)
    macs = [probe.cost(a)["macs"] for a in archs]
    val = probe.val_scenes()
    search_val = val[:RANDLA_SEARCH_VAL]
    steps, lr = args.randla_scratch_steps, 0.01

    def scratch(arch: Arch, seed: int) -> dict[str, Any]:
        model, cpu = cpu_timed(train_from_scratch, probe, arch, train, steps=steps, batch=2,
                               lr=lr, seed=seed)
        return {"full": probe.score(arch, val, model)["miou"], "train_cpu_s": cpu}

    stand_alone = [[memo.get(f"randlanet/scratch/{key_of(RANDLA_DATA)}/{a.key()}/{steps}/"
                             f"{10 + s}", lambda a=a, s=s: scratch(a, 10 + s)) for a in archs]
                   for s in range(args.noise_seeds)]
    ref = [r["full"] for r in stand_alone[0]]
    scratch_s = median([r["train_cpu_s"] for r in stand_alone[0]])
    out: dict[str, Any] = {
        "setup": {"space": RANDLA_SPACE, "data": RANDLA_DATA, "archs": len(archs),
                  "macs_range": [min(macs), max(macs)],
                  "scratch": f"{steps} steps (the same for every subnet), batch 2, Adam lr "
                  f"{lr}, cosine, from random initialisation",
                  "validation": f"full: all {len(val)} validation scenes; subset: the first "
                  f"{RANDLA_SEARCH_VAL} (the search's val_scenes default)",
                  "bn_recalibration_scenes": 4, "threads": 1},
        "stand_alone": {"scratch_miou_median": round(median(ref), 4),
                        "scratch_train_cpu_s_median": round(scratch_s, 2),
                        "macs_vs_scratch": rank(macs, ref)},
        "recipes": {},
    }
    ref_mean = None
    if args.noise_seeds > 1:
        # how well the stand-alone metric ranks itself across initialisations; the mean over
        # seeds is the less noisy reference
        out["stand_alone"]["scratch_seed0_vs_seed1"] = rank(
            ref, [r["full"] for r in stand_alone[1]])
        ref_mean = [float(np.mean([seeds[i]["full"] for seeds in stand_alone]))
                    for i in range(len(archs))]
        out["stand_alone"]["macs_vs_scratch_seed_mean"] = rank(macs, ref_mean)
    for name in args.randla_recipes:
        sn = randlanet_supernet(root, data_dir, train, RANDLA_RECIPES[name])
        plain = RandLANetSpace({**opts, "checkpoint": sn["checkpoint"]})
        recal = RandLANetSpace({**opts, "checkpoint": sn["checkpoint"], "calibrate_bn": 4})

        def measure(arch: Arch, plain=plain, recal=recal) -> dict[str, Any]:
            subset, t_eval = cpu_timed(plain.score, arch, search_val)
            model, t_cal = cpu_timed(recal.calibrated, arch, recal.train_scenes(4))
            return {"plain": {"full": plain.score(arch, val)["miou"], "subset": subset["miou"]},
                    "recal": {"full": recal.score(arch, val, model)["miou"],
                              "subset": recal.score(arch, search_val, model)["miou"]},
                    "eval_subset_cpu_s": t_eval, "recal_cpu_s": t_cal}

        rows = [memo.get(f"randlanet/inherited/{sn['checkpoint']}/{a.key()}/{len(val)}",
                         lambda a=a: measure(a)) for a in archs]
        col = {f"{k}_{v}": [r[k][v] for r in rows] for k in ("plain", "recal")
               for v in ("full", "subset")}
        eval_s = median([r["eval_subset_cpu_s"] for r in rows])
        recal_s = median([r["recal_cpu_s"] for r in rows])
        out["recipes"][name] = {
            "recipe": sn["config"], "supernet_train_cpu_s": round(sn["cpu_s"], 1),
            "tau_vs_scratch": {f"inherited{'_recal' if k == 'recal' else ''}_{v}": rank(
                col[f"{k}_{v}"], ref) for k in ("plain", "recal") for v in ("full", "subset")},
            "tau_vs_scratch_seed_mean": None if ref_mean is None else {
                "inherited_recal_full": rank(col["recal_full"], ref_mean),
                "inherited_recal_subset": rank(col["recal_subset"], ref_mean)},
            "miou_full_median": {"inherited": round(median(col["plain_full"]), 4),
                                 "inherited_recal": round(median(col["recal_full"]), 4),
                                 "scratch": round(median(ref), 4)},
            "recal_share_of_scratch_median": round(median(
                [a / b for a, b in zip(col["recal_full"], ref, strict=True) if b > 0]), 4),
            "cost_cpu_s": {"inherited_eval_median": round(eval_s, 3),
                           "recal_median": round(recal_s, 3),
                           "scratch_train_median": round(scratch_s, 2),
                           "saved_per_candidate": round(1 - (eval_s + recal_s) / scratch_s, 4)},
            "per_arch": [{"macs": int(m), "scratch_full": round(s_, 4),
                          "inherited_full": round(p, 4), "inherited_recal_full": round(r, 4)}
                         for m, s_, p, r in zip(macs, ref, col["plain_full"], col["recal_full"],
                                                strict=True)],
        }
    return out


# --- BERT -------------------------------------------------------------------------------------
def bert_section(root: Path, args: argparse.Namespace, memo: Memo) -> dict[str, Any]:
    from search_spaces.bert.corpus import write_stdlib_topic_task
    from search_spaces.bert.space import BertSpace

    if not (root / "topics" / "dev.tsv").exists():
        write_stdlib_topic_task(root / "topics")
    opts = {"seq_len": 64, "num_texts": 64, "importance_examples": 64, "task": "topics",
            "max_train_examples": args.bert_train_examples, "max_eval_examples": 400}
    space = BertSpace(opts)
    archs = spread_archs(space, args.archs, seed=args.arch_seed)
    macs = [space.cost(a)["macs"] for a in archs]
    epochs, lr = 1, 1e-4

    def measure(arch: Arch) -> dict[str, Any]:
        inherited, t_eval = cpu_timed(space.evaluate, arch, ["fidelity", "accuracy"])
        (tuned, info), t_ft = cpu_timed(space.finetune, arch, ["accuracy"], epochs=epochs, lr=lr)
        return {"fidelity": inherited["fidelity"], "accuracy": inherited["accuracy"],
                "finetuned": tuned["accuracy"], "eval_cpu_s": t_eval, "finetune_cpu_s": t_ft,
                "steps": info.get("steps")}

    rows = [memo.get(f"bert/{key_of(opts)}/{a.key()}/{epochs}/{lr}", lambda a=a: measure(a))
            for a in archs]
    col = {k: [r[k] for r in rows] for k in ("fidelity", "accuracy", "finetuned")}
    eval_s = median([r["eval_cpu_s"] for r in rows])
    ft_s = median([r["finetune_cpu_s"] for r in rows])
    return {
        "setup": {"model": "all-MiniLM-L6-v2 (packaged)", "task": "stdlib-topics (5 labels)",
                  "options": opts, "archs": len(archs), "macs_range": [min(macs), max(macs)],
                  "inherited_accuracy": "logistic-regression head on the subnet's frozen "
                  "features (the space's accuracy metric)",
                  "stand_alone": f"fine-tuned from inherited weights, {epochs} epoch, AdamW lr "
                  f"{lr}, task cross-entropy (no from-scratch BERT: it would not learn here)"},
        "tau_vs_finetuned": {"fidelity": rank(col["fidelity"], col["finetuned"]),
                             "inherited_accuracy": rank(col["accuracy"], col["finetuned"]),
                             "macs": rank(macs, col["finetuned"])},
        "tau_fidelity_vs_inherited_accuracy": rank(col["fidelity"], col["accuracy"]),
        "median": {k: round(median(v), 4) for k, v in col.items()},
        "cost_cpu_s": {"inherited_eval_median": round(eval_s, 3),
                       "finetune_median": round(ft_s, 2),
                       "saved_per_candidate": round(1 - eval_s / ft_s, 4)},
        "per_arch": [{"macs": int(m), "fidelity": round(r["fidelity"], 4),
                      "inherited_accuracy": round(r["accuracy"], 4),
                      "finetuned_accuracy": round(r["finetuned"], 4)}
                     for m, r in zip(macs, rows, strict=True)],
    }


# --- the figures the service reports ------------------------------------------------------------
#: The issue's target for inherited-with-recalibration mIoU as a share of trained mIoU.
SHARE_TARGET = 0.9


def _supernet_figures(section: dict[str, Any], command: str) -> dict[str, Any]:
    """A trained-supernet space's entry: the recipe to train with, its taus on the search's
    subset, and every recipe's tau and share beside it. The recipe: among those whose
    recalibrated inherited mIoU reaches ``SHARE_TARGET`` of the scratch mIoU (all of them if
    none does), the one whose recalibrated inherited mIoU ranks best against scratch on the
    full validation set: a supernet is for both ranking and inheriting accurate weights."""
    recipes = section["recipes"]
    best = max(recipes, key=lambda r: (
        recipes[r]["recal_share_of_scratch_median"] >= SHARE_TARGET,
        recipes[r]["tau_vs_scratch"]["inherited_recal_full"]["kendall_tau"]))
    r = recipes[best]
    return {
        "metric": "miou", "versus": "subnets trained from scratch (same data, fixed budget)",
        "recipe": best, "archs": section["setup"]["archs"],
        "kendall_tau": r["tau_vs_scratch"]["inherited_subset"]["kendall_tau"],
        "kendall_tau_recalibrated": r["tau_vs_scratch"]["inherited_recal_subset"][
            "kendall_tau"],
        "kendall_tau_full_val_recalibrated": r["tau_vs_scratch"]["inherited_recal_full"][
            "kendall_tau"],
        "recalibrated_share_of_trained_miou": r["recal_share_of_scratch_median"],
        "kendall_tau_by_recipe": {name: v["tau_vs_scratch"]["inherited_recal_subset"][
            "kendall_tau"] for name, v in recipes.items()},
        "share_by_recipe": {name: v["recal_share_of_scratch_median"]
                            for name, v in recipes.items()},
        "command": command,
    }


def figures_of(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per space, the entry of ``search_spaces/data/weight_sharing.json``."""
    command = out["command"]
    figures: dict[str, dict[str, Any]] = {}
    for space in ("deeplabv3plus", "randlanet"):
        if space in out:
            figures[space] = _supernet_figures(out[space], command)
    if "bert" in out:
        r = out["bert"]
        figures["bert"] = {
            "metric": "accuracy (task) / fidelity", "versus": "subnets fine-tuned on the task",
            "recipe": "pretrained MiniLM-L6, importance-reordered heads/neurons (no supernet "
            "training)", "archs": r["setup"]["archs"],
            "kendall_tau": r["tau_vs_finetuned"]["inherited_accuracy"]["kendall_tau"],
            "kendall_tau_fidelity": r["tau_vs_finetuned"]["fidelity"]["kendall_tau"],
            "command": command,
        }
    return figures


OUT_OF_SAMPLE_KEYS = ("archs", "kendall_tau", "kendall_tau_recalibrated",
                      "kendall_tau_full_val_recalibrated", "recalibrated_share_of_trained_miou",
                      "command")


def merge_figures(shipped: dict[str, Any], fresh: dict[str, dict[str, Any]], *,
                  arch_seed: int) -> dict[str, Any]:
    """The figures file after a run. Seed 0 (the draw the recipes were chosen on) replaces a
    space's entry; another seed adds the entry's ``out_of_sample`` figures, which must measure
    the recipe seed 0 chose (the service warns on the lower tau of the two)."""
    merged = dict(shipped)
    for space, entry in fresh.items():
        if arch_seed == 0:
            merged[space] = entry
            continue
        previous = shipped.get(space)
        if previous is None or previous.get("recipe") != entry["recipe"]:
            raise ValueError(
                f"{space}: an out-of-sample draw (--arch-seed {arch_seed}) measures the recipe "
                f"that the seed-0 figures chose ({(previous or {}).get('recipe')!r}), not "
                f"{entry['recipe']!r}: run it with that recipe only")
        merged[space] = {**previous, "out_of_sample": {
            "arch_seed": arch_seed, **{k: entry[k] for k in OUT_OF_SAMPLE_KEYS if k in entry}}}
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="every recipe and the full budgets (tens of minutes, cached)")
    parser.add_argument("--workdir", default=".paretonas/weight-sharing",
                        help="cache of datasets, supernets and measured values")
    parser.add_argument("--sections", default="deeplab,randlanet,bert")
    parser.add_argument("--archs", type=int, default=12)
    parser.add_argument("--arch-seed", type=int, default=0,
                        help="seed of the subnet draw: another seed gives a fresh set of subnets, "
                        "on which recipes chosen on seed 0 are checked out of sample")
    parser.add_argument("--recipes", default=None,
                        help=f"comma-separated DeepLabV3+ recipes of {sorted(RECIPES)}")
    parser.add_argument("--subset-size", type=int, default=24)
    parser.add_argument("--recal-batches", type=int, default=16,
                        help="DeepLabV3+: training batches (of 8) re-estimating each subnet's "
                        "BatchNorm statistics")
    parser.add_argument("--scratch-epochs", type=int, default=None)
    parser.add_argument("--finetune-epochs", type=int, default=None)
    parser.add_argument("--noise-seeds", type=int, default=None)
    parser.add_argument("--bert-train-examples", type=int, default=None)
    parser.add_argument("--randla-recipes", default=None,
                        help=f"comma-separated RandLA-Net recipes of {sorted(RANDLA_RECIPES)}")
    parser.add_argument("--randla-scratch-steps", type=int, default=None,
                        help="RandLA-Net: each subnet's from-scratch training steps")
    parser.add_argument("--write-figures", metavar="PATH",
                        help="merge each measured space's figures into this JSON file (the "
                        "service's search_spaces/data/weight_sharing.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    torch.set_num_threads(1)
    if args.write_figures and not args.full:
        parser.error("--write-figures needs --full (the service reports the real figures)")
    if args.archs < 12:
        parser.error("--archs must be at least 12")
    if args.recal_batches < 1 or (args.randla_scratch_steps or 1) < 1:
        parser.error("--recal-batches and --randla-scratch-steps must be at least 1")
    args.recipes = args.recipes.split(",") if args.recipes else (
        list(RECIPES) if args.full else list(QUICK_RECIPES))
    unknown = sorted(set(args.recipes) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipes {unknown}; allowed: {sorted(RECIPES)}")
    args.randla_recipes = args.randla_recipes.split(",") if args.randla_recipes else (
        [r for r in RANDLA_RECIPES if r not in QUICK_RANDLA_RECIPES] if args.full
        else list(QUICK_RANDLA_RECIPES))
    unknown = sorted(set(args.randla_recipes) - set(RANDLA_RECIPES))
    if unknown:
        parser.error(f"unknown RandLA-Net recipes {unknown}; allowed: {sorted(RANDLA_RECIPES)}")
    args.scratch_epochs = args.scratch_epochs or (36 if args.full else 6)
    args.finetune_epochs = args.finetune_epochs or (3 if args.full else 1)
    args.noise_seeds = args.noise_seeds or (2 if args.full else 1)
    args.randla_scratch_steps = args.randla_scratch_steps or (500 if args.full else 30)
    args.bert_train_examples = args.bert_train_examples or (500 if args.full else 100)
    root = Path(args.workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    for part in ("deeplab", "randlanet", "bert"):
        (root / part).mkdir(exist_ok=True)
    os.environ["PARETONAS_DATA_DIRS"] = os.pathsep.join(
        str(root / p) for p in ("deeplab", "randlanet", "bert"))
    memo = Memo(root / "measured.json")
    sections = args.sections.split(",")
    command = "python bench/weight_sharing.py" + " ".join(
        [""] + [a for a in sys.argv[1:]])
    out: dict[str, Any] = {"bench": "weight_sharing", "command": command.strip(),
                           "full": args.full}
    if "deeplab" in sections:
        out["deeplabv3plus"] = deeplab_section(root / "deeplab", args, memo)
    if "randlanet" in sections:
        out["randlanet"] = randlanet_section(root / "randlanet", args, memo)
    if "bert" in sections:
        os.environ.setdefault("PARETONAS_CACHE_DIR", str(root / "bert" / "cache"))
        out["bert"] = bert_section(root / "bert", args, memo)
    out["cached_values_reused"] = memo.hits
    if args.write_figures:
        path = Path(args.write_figures)
        shipped = json.loads(path.read_text()) if path.exists() else {}
        try:
            merged = merge_figures(shipped, figures_of(out), arch_seed=args.arch_seed)
        except ValueError as exc:
            parser.error(str(exc))
        path.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
