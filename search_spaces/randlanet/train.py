"""Train a RandLA-Net supernet with weight sharing, or a subnet from scratch.

Every step accumulates the gradients of the largest subnet, the smallest one and ``n_random``
random ones (each at its own sampling parameters: input points, ratios, neighbours), then takes
one Adam step: the usual way to make every subnet of a weight-sharing supernet usable without
retraining (Once-for-All, BigNAS). The subnets of a step come from the shared schedules
(``search_spaces/shrinking.py``): the sandwich rule over the whole space, or Once-for-All's
progressive shrinking over RandLA-Net's groups (``PHASES``); optionally each smaller subnet is
also distilled in place from the largest one's predictions.

CLI: ``paretonas supernet train randlanet --data DIR --out supernet.safetensors``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from paretonas_core.compute import CPU, Compute, from_arguments
from paretonas_core.compute import add_arguments as compute_arguments
from search_spaces import shrinking
from search_spaces.base import Arch, SpaceError
from search_spaces.randlanet.checkpoint import save_supernet
from search_spaces.randlanet.data import Scene, features, load_split, sample_points
from search_spaces.randlanet.model import RandLANet, SubnetConfig
from search_spaces.randlanet.space import RandLANetSpace

#: what ``paretonas ... --help`` shows (the docstring is for developers)
CLI_HELP = (
    "Train a RandLA-Net supernet with weight sharing (sandwich rule: largest, smallest "
    "and random subnets each step), or one subnet from scratch."
)


log = logging.getLogger(__name__)

Plan = Callable[[int, np.random.Generator], list[tuple[SubnetConfig, int]]]


def dim_group(name: str) -> str:
    """The progressive-shrinking group of a RandLA-Net dimension: ``sampling`` (input points,
    sub-sampling ratios, neighbours: what Once-for-All's elastic kernel and resolution are to a
    CNN, the receptive field and the input size), ``depth`` or ``width``."""
    if name == "depth":
        return "depth"
    if name.startswith("width_"):
        return "width"
    return "sampling"  # num_points, ratio_i, k_i


#: Once-for-All's order: the largest network, then elastic receptive field and input size,
#: then depth, then width (cumulative).
PHASES = shrinking.Phases(
    ((), ("sampling",), ("sampling", "depth"), ("sampling", "depth", "width")), dim_group)


def make_batch(scenes: list[Scene], num_points: int, batch: int,
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random scenes, each sampled to ``num_points`` and rotated about z at random."""
    xs, ys = [], []
    for _ in range(batch):
        scene = scenes[int(rng.integers(len(scenes)))]
        idx = sample_points(scene, num_points, rng)
        x = features(scene, idx).clone()
        angle = rng.uniform(0, 2 * math.pi)
        c, s = math.cos(angle), math.sin(angle)
        rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        x[:, :3] = x[:, :3] @ rot.T
        xs.append(x)
        ys.append(torch.from_numpy(scene.labels[idx]))
    return torch.stack(xs), torch.stack(ys)


def class_weights(scenes: list[Scene], num_classes: int) -> torch.Tensor:
    """1/sqrt(class frequency), normalised to mean 1: RandLA-Net's remedy for floors and walls
    outnumbering everything else (absent classes get the largest weight seen)."""
    counts = np.zeros(num_classes)
    for s in scenes:
        counts += np.bincount(s.labels, minlength=num_classes)
    freq = counts / max(counts.sum(), 1)
    w = np.where(freq > 0, 1 / np.sqrt(np.maximum(freq, 1e-12)), 0.0)
    w[freq == 0] = w.max() if w.max() > 0 else 1.0
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def train_steps(net: RandLANet, scenes: list[Scene], plan: Plan, *, steps: int, batch: int,
                lr: float, seed: int, distill: bool = False, compute: Compute = CPU
                ) -> list[float]:
    """Run ``steps`` optimiser steps; ``plan(step, rng)`` lists the (subnet, points) pairs whose
    (class-weighted cross-entropy) losses are accumulated in that step. Returns the mean loss
    of every step. On CUDA ``net`` is moved there (once; it stays) and each batch is moved as
    it is made (no prefetching: batches and subnets draw from one random stream, in order).

    ``distill``: the subnets of a step share one batch, sampled at the step's largest input
    size, each taking a prefix of its points (they are in random order, so a prefix is a
    random sample, as RandLA-Net's own sub-sampling does); every subnet after the first (the
    largest, the teacher) is trained on half label loss, half cross-entropy against the
    teacher's probabilities on its points."""
    net = compute.module(net)
    weights = compute.to(class_weights(scenes, net.cfg.num_classes))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    net.train()
    losses = []
    scaled = compute.steps()
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        subnets = plan(step, rng)
        shared = compute.to(make_batch(scenes, max(n for _, n in subnets), batch, rng)
                            ) if distill else None
        teacher = None
        for sub, num_points in subnets:
            if shared is None:
                x, y = compute.to(make_batch(scenes, num_points, batch, rng))
            else:
                x, y = shared[0][:, :num_points], shared[1][:, :num_points]
            with compute.autocast():
                logits = net(x, sub)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                       weight=weights)
                if teacher is not None:
                    loss = 0.5 * loss + 0.5 * shrinking.distill_loss(
                        logits, teacher[:, :num_points], dim=-1)
                elif distill and num_points == shared[1].shape[1]:  # it saw every point
                    teacher = F.softmax(logits.detach().float(), dim=-1)
            scaled.backward(loss)
            total += float(loss.detach())
        scaled.step(opt)
        sched.step()
        losses.append(total / len(subnets))
    net.eval()
    return losses


def sandwich_plan(space: RandLANetSpace, n_random: int) -> Plan:
    """Largest + smallest + ``n_random`` random feasible subnets per step."""
    return shrinking_plan(space, "sandwich", n_random)


def shrinking_plan(space: RandLANetSpace, schedule: str, n_random: int, *,
                   phase_steps: Sequence[int] | None = None) -> Plan:
    """The subnets of each step under ``schedule`` (``shrinking.SCHEDULES``), the largest
    first; ``progressive`` moves through ``PHASES`` after ``phase_steps`` steps each."""
    if schedule not in shrinking.SCHEDULES:
        raise SpaceError(f"schedule {schedule!r} unknown; allowed: "
                         f"{', '.join(shrinking.SCHEDULES)}")
    if schedule == "progressive" and phase_steps is None:
        raise SpaceError("progressive shrinking needs phase_steps")
    last = len(PHASES.groups) - 1

    def plan(step: int, rng: np.random.Generator) -> list[tuple[SubnetConfig, int]]:
        phase = shrinking.phase_of(step, phase_steps) if phase_steps else last
        archs = shrinking.step_archs(space, rng, schedule=schedule, phase=phase,
                                     num_random=n_random, phases=PHASES)
        return [space.subnet(a) for a in archs]

    return plan


def fixed_plan(sub: SubnetConfig, num_points: int) -> Plan:
    return lambda step, rng: [(sub, num_points)]


def train_from_scratch(space: RandLANetSpace, arch: Arch, scenes: list[Scene], *, steps: int,
                       batch: int, lr: float, seed: int, compute: Compute = CPU) -> RandLANet:
    """A freshly initialised static subnet of ``arch`` trained alone (the no-sharing baseline),
    left on ``compute``'s device."""
    torch.manual_seed(seed)
    model = space.build_static(arch)
    sub, num_points = space.subnet(arch)
    train_steps(model, scenes, fixed_plan(sub, num_points), steps=steps, batch=batch, lr=lr,
                seed=seed, compute=compute)
    return model


# --- CLI module (``paretonas supernet train randlanet ...``) -----------------------------------
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="scene folder with train/ (and val/)")
    parser.add_argument("--out", required=True, help="output checkpoint (.safetensors)")
    parser.add_argument("--num-classes", type=_positive_int, default=4)
    parser.add_argument("--max-widths", type=_int_list, default=[16, 64, 128, 256])
    parser.add_argument("--depths", type=_int_list, default=None,
                        help="encoder depths to train (default: 2..number of widths)")
    parser.add_argument("--num-points", type=_int_list, default=[1024, 2048, 4096])
    parser.add_argument("--ratios", type=_int_list, default=[4, 3, 2])
    parser.add_argument("--ks", type=_int_list, default=[8, 12, 16])
    parser.add_argument("--steps", type=_positive_int, default=500)
    parser.add_argument("--batch", type=_positive_int, default=4)
    parser.add_argument("--random-subnets", type=int, default=2,
                        help="random subnets per step besides the largest and smallest")
    parser.add_argument("--schedule", choices=list(shrinking.SCHEDULES), default="sandwich",
                        help="subnets per step: sandwich rule, Once-for-All progressive "
                        "shrinking (largest, then + sampling, + depth, + width), or the "
                        "largest network only")
    parser.add_argument("--phase-steps", type=_int_list, default=None,
                        help="progressive: steps of its 4 phases, comma-separated (sum = "
                        "--steps; default: an even split)")
    parser.add_argument("--distill", action="store_true",
                        help="in-place distillation from the largest subnet of each step")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=_positive_int, default=1)
    compute_arguments(parser)


def space_options(args: argparse.Namespace) -> dict:
    return {"max_widths": args.max_widths, "num_points": args.num_points,
            "ratios": args.ratios, "ks": args.ks, "num_classes": args.num_classes,
            "depths": args.depths,
            "init_seed": args.seed}


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        print(f"error: --out must end in .safetensors, got {out.name!r}", file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"error: --out: folder {out.parent} does not exist", file=sys.stderr)
        return 2
    if not 0 < args.lr < 1 or args.random_subnets < 0:
        print("error: --lr must be in (0, 1) and --random-subnets >= 0", file=sys.stderr)
        return 2
    try:
        compute = from_arguments(args)
        phases = shrinking.split_phases(args.steps, args.phase_steps, len(PHASES.groups),
                                        unit="steps")
        space = RandLANetSpace(space_options(args))
        train = load_split(Path(args.data), "train", args.num_classes)
        torch.manual_seed(args.seed)
        space._net = RandLANet(space.net_config)  # a fresh supernet: the one to train
    except (SpaceError, ValueError) as exc:  # ComputeError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    plan = shrinking_plan(space, args.schedule, args.random_subnets,
                          phase_steps=phases if args.schedule == "progressive" else None)
    losses = train_steps(space.net, train, plan, steps=args.steps, batch=args.batch, lr=args.lr,
                         seed=args.seed, distill=args.distill, compute=compute)
    seconds = time.perf_counter() - start
    space.net.to("cpu")  # saved and scored below as on a CPU-only machine
    recipe = {"schedule": args.schedule, "phase_steps": phases, "distill": args.distill}
    save_supernet(space.net, out, extra={"steps": args.steps, "train_seconds": seconds, **recipe})
    summary = {"checkpoint": str(out), "steps": args.steps, "train_seconds": round(seconds, 2),
               **recipe,
               "compute": compute.describe(),
               "first_loss": round(losses[0], 4),
               "last_loss": round(float(np.mean(losses[-10:])), 4)}
    if (Path(args.data) / "val").is_dir():
        val = load_split(Path(args.data), "val", args.num_classes, limit=4)
        for name, arch in (("largest", space.largest()), ("smallest", space.smallest())):
            summary[f"miou_{name}"] = round(space.score(arch, val)["miou"], 4)
    print(json.dumps(summary))
    return 0
