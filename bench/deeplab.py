"""DeepLabV3+ / FMAS figures, printed as one JSON document.

On the demo set-up (``search_spaces.deeplabv3plus.demo``: synthetic VOC, a small supernet trained
with the sandwich rule, cached under ``--workdir``), CPU, 1 thread:

Times are CPU seconds of the process (torch on 1 thread), robust to other jobs on the machine;
the supernet's training time is wall-clock (measured once, when it was trained and cached).

1. ``extraction_ms``: ``space.extract(arch)`` per subnet (median over sampled archs).
2. ``evaluation_s``: extract + mIoU on the validation subset per subnet, and on the full
   validation set (medians).
3. ``inherited_vs_scratch``: evaluating a candidate with inherited weights (extract + subset
   mIoU) against training that subnet from scratch on the same training data for the same number
   of epochs as the supernet (measured, then scored on the same subset): saved fraction per
   candidate, and for a whole search of N candidates with the supernet's training counted once.
   FMAS reports ~99% saved.
   ``bn_recalibration``: the same candidates with BN statistics re-estimated on 4 training
   batches (OFA's practice; off = pure FMAS): subset mIoU and evaluation time.
4. ``subset_fidelity``: Kendall tau between subset mIoU and full-validation mIoU over held-out
   sampled subnets, for random, class-stratified and ranking-preserving subsets (the last picked
   with reference subnets disjoint from the held-out ones); medians over selection seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paretonas_core.segmentation import (  # noqa: E402
    kendall_tau,
    mean_iou,
    random_subset,
    ranking_preserving_subset,
    stratified_subset,
    subset_miou,
)
from search_spaces.deeplabv3plus import demo  # noqa: E402
from search_spaces.deeplabv3plus.data import VOCSegmentation  # noqa: E402
from search_spaces.deeplabv3plus.space import DeepLabSpace  # noqa: E402
from search_spaces.deeplabv3plus.training import (  # noqa: E402
    AugmentedBatches,
    sandwich_step,
    train_model,
)

log = logging.getLogger("bench.deeplab")


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    """Result and CPU seconds of this process (1 torch thread): on a machine shared with other
    jobs, CPU time measures the work itself, wall time mostly the neighbours."""
    t0 = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=".paretonas/deeplab-demo",
                        help="cache of the dataset and the trained supernet")
    parser.add_argument("--archs", type=int, default=12, help="held-out subnets to score")
    parser.add_argument("--subset-size", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=5, help="subset-selection seeds")
    parser.add_argument("--search-trials", type=int, default=100,
                        help="N for the whole-search saving")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer epochs and archs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    torch.set_num_threads(1)
    if args.quick:
        args.archs, args.seeds = 4, 2
    root = Path(args.workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["PARETONAS_DATA_DIRS"] = str(root)
    setup = demo.prepare(root, epochs=2 if args.quick else None)
    opts = {**setup["options"], "subset_size": args.subset_size}
    space = DeepLabSpace({**opts, "subset_selection": "stratified"})
    n_val = len(space.val.dataset)
    everything = np.arange(n_val)
    rng = np.random.default_rng(123)
    held_out = [space.sample(rng) for _ in range(args.archs)]

    # 1-2. extraction and evaluation times (the first call loads the supernet and images)
    space.evaluate(space.largest(), ["miou"])
    extract_s, subset_s, full_s, per_image = [], [], [], []
    for arch in held_out:
        model, dt = timed(space.extract, arch)
        extract_s.append(dt)
        _, dt = timed(space.evaluate, arch, ["miou"])
        subset_s.append(dt)
        conf, dt = timed(space.confusions, arch, everything)
        full_s.append(dt)
        per_image.append(conf)
    conf_all = np.stack(per_image)  # [K, N, C, C]
    # extraction from the full-size supernet (default options: width 1.0, 21 classes; random
    # weights, which do not change the time)
    full_space = DeepLabSpace()
    full_space.extract(full_space.largest())
    full_rng = np.random.default_rng(7)
    full_extract_s = [timed(full_space.extract, full_space.sample(full_rng))[1] for _ in range(5)]
    full_miou = np.asarray(mean_iou(conf_all.sum(axis=1)))

    # 3. inherited weights vs training from scratch (mid-size subnet, same data and epochs)
    epochs = setup["train_config"]["epochs"]
    arch = held_out[0]
    inherited_model, t_extract = timed(space.extract, arch)
    inherited_miou, t_eval = timed(space.evaluate, arch, ["miou"], model=inherited_model)
    torch.manual_seed(0)
    scratch = space.build_static(arch)
    train_set = VOCSegmentation(root / opts["data_dir"], "train",
                                num_classes=opts["num_classes"])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    stats = train_model(scratch, train_set, resolution=int(arch["resolution"]), epochs=epochs,
                        batch_size=setup["train_config"]["batch_size"], seed=0)
    scratch_train_cpu = time.process_time() - cpu0
    scratch_train_wall = time.perf_counter() - wall0
    scratch_miou, t_scratch_eval = timed(space.evaluate, arch, ["miou"], model=scratch)
    inherited_s = t_extract + t_eval
    scratch_s = scratch_train_cpu + t_scratch_eval
    n = args.search_trials
    # the supernet's training cost in the same unit: CPU time of sandwich steps (measured on a
    # fresh supernet of the same structure) times the steps the cached one was trained for
    probe = DeepLabSpace(demo.STRUCTURE)
    batches = AugmentedBatches(train_set, max(demo.STRUCTURE["resolutions"]))
    step_rng = np.random.default_rng(0)
    step_cpu = []
    for (images, masks), _ in zip(batches.epoch(setup["train_config"]["batch_size"], step_rng),
                                  range(6), strict=False):
        probe.supernet.zero_grad()
        _, dt = timed(sandwich_step, probe.supernet.train(), probe, images, masks, step_rng,
                      num_random=setup["train_config"]["num_random"], distill=True)
        step_cpu.append(dt)
    supernet_s = median(step_cpu[1:]) * setup["steps"]

    # BN re-calibration (4 training batches per candidate), off = pure FMAS
    recal = DeepLabSpace({**opts, "subset_selection": "stratified",
                          "bn_recalibration_batches": 4})
    recal.evaluate(recal.largest(), ["miou"])  # load supernet, images
    recal_miou, recal_s = [], []
    for a in held_out:
        value, dt = timed(recal.evaluate, a, ["miou"])
        recal_miou.append(value["miou"])
        recal_s.append(dt)
    plain_miou = [float(mean_iou(c[space.subset()].sum(axis=0))) for c in per_image]

    # 4. subset fidelity on the held-out subnets
    presence = space.val.dataset.class_presence()
    refs = space.reference_archs(space.options.ranking_references)
    ref_conf = np.stack([space.confusions(a, everything) for a in refs])
    taus: dict[str, list[float]] = {"random": [], "stratified": [], "ranking_preserving": []}
    for seed in range(args.seeds):
        subsets = {
            "random": random_subset(n_val, args.subset_size, seed=seed),
            "stratified": stratified_subset(presence, args.subset_size, seed=seed),
            "ranking_preserving": ranking_preserving_subset(
                ref_conf, args.subset_size, presence=presence, seed=seed),
        }
        for name, sub in subsets.items():
            taus[name].append(float(kendall_tau(subset_miou(conf_all, sub), full_miou)))

    out = {
        "command": "python bench/deeplab.py" + (" --quick" if args.quick else ""),
        "setup": {
            "structure": demo.STRUCTURE, "data": demo.DATA, "train": setup["train_config"],
            "space_size": space.size(), "val_images": n_val, "subset_size": args.subset_size,
            "held_out_archs": args.archs, "threads": 1,
            "ranking_references": space.options.ranking_references,
            "supernet_train_wall_s": setup.get("train_seconds"),
            "supernet_train_cpu_s_estimated": supernet_s,
            "supernet_step_cpu_s_median": median(step_cpu[1:]),
        },
        "extraction_ms": {"median": 1e3 * median(extract_s), "n": len(extract_s),
                          "full_size_median": 1e3 * median(full_extract_s),
                          "full_size_params_largest": full_space.cost(full_space.largest())[
                              "params"]},
        "evaluation_s": {
            "subset_median": median(subset_s), "full_val_median": median(full_s),
            "subset_over_full": median(subset_s) / median(full_s),
        },
        "bn_recalibration": {
            "batches": 4, "subset_miou_median_off": median(plain_miou),
            "subset_miou_median_on": median(recal_miou),
            "evaluation_s_median_on": median(recal_s),
            "inherited_miou_on_scratch_arch": recal_miou[0],
        },
        "inherited_vs_scratch": {
            "arch_macs": space.cost(arch)["macs"],
            "inherited_s": inherited_s,
            "scratch_train_s": scratch_train_cpu, "scratch_train_wall_s": scratch_train_wall,
            "scratch_steps": stats["steps"],
            "scratch_epochs": epochs,
            "scratch_s": scratch_s,
            "saved_per_candidate": 1 - inherited_s / scratch_s,
            "inherited_miou": inherited_miou["miou"], "scratch_miou": scratch_miou["miou"],
            "search_trials": n,
            "saved_whole_search": 1 - (supernet_s + n * inherited_s) / (n * scratch_s),
        },
        "subset_fidelity": {
            "kendall_tau_median": {k: median(v) for k, v in taus.items()},
            "kendall_tau_all": taus,
            "full_miou_range": [float(full_miou.min()), float(full_miou.max())],
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
