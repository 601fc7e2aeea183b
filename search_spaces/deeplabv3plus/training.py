"""Supernet training with the sandwich rule (largest, smallest and random subnets every step),
Once-for-All's progressive shrinking or the largest network alone (``shrinking.py``), optional
in-place distillation from the largest subnet, epoch checkpoints and resumption.

Resumption is exact at epoch granularity: the image order and the sampled subnets of epoch ``e``
come from ``numpy.random.default_rng([seed, e])``, and the optimizer state is checkpointed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paretonas_core.compute import CPU, Compute, Steps
from search_spaces.base import Arch, SearchSpace, SpaceError
from search_spaces.deeplabv3plus import checkpoint as ckpt
from search_spaces.deeplabv3plus.data import (
    IGNORE_INDEX,
    VOCSegmentation,
    mask_to_tensor,
    to_tensor,
)
from search_spaces.deeplabv3plus.shrinking import SCHEDULES, phase_epochs, phase_of, step_archs
from search_spaces.deeplabv3plus.structure import Structure
from search_spaces.deeplabv3plus.supernet import DeepLabSupernet
from search_spaces.shrinking import distill_loss

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adam"  # "adam" (AdamW, from scratch) or "sgd" (momentum 0.9, fine-tuning)
    num_random: int = 2
    distill: bool = True
    crop: int | None = None  # training crop (default: the largest resolution)
    seed: int = 0
    max_steps_per_epoch: int | None = None
    schedule: str = "sandwich"  # "sandwich", "progressive" (Once-for-All) or "largest" (plain)
    phase_epochs: list[int] | None = None  # progressive: epochs per phase (default: even split)


class AugmentedBatches:
    """Random scale-crop + horizontal flip of a VOC split, as float tensors at ``crop`` px."""

    def __init__(self, dataset: VOCSegmentation, crop: int):
        self.dataset = dataset
        self.crop = crop
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._cache:
            self._cache[i] = self.dataset.load(i)
        return self._cache[i]

    def sample(self, i: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self._raw(i)
        h, w = mask.shape
        side = int(min(h, w) * rng.uniform(0.6, 1.0))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        image, mask = image[y : y + side, x : x + side], mask[y : y + side, x : x + side]
        if rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        return to_tensor(image, self.crop), mask_to_tensor(mask, self.crop)

    def epoch(self, batch_size: int, rng: np.random.Generator):
        order = rng.permutation(len(self.dataset))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            items = [self.sample(int(i), rng) for i in order[start : start + batch_size]]
            yield torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def steps_per_epoch(self, batch_size: int) -> int:
        return len(self.dataset) // batch_size


def _soft_loss(logits: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the largest subnet's probabilities on labelled pixels."""
    return distill_loss(logits, teacher, dim=1, keep=(mask != IGNORE_INDEX).unsqueeze(1).float())


def sandwich_step(
    net: DeepLabSupernet,
    space: SearchSpace,
    images: torch.Tensor,
    masks: torch.Tensor,
    rng: np.random.Generator,
    *,
    num_random: int,
    distill: bool,
    compute: Compute = CPU,
    steps: Steps | None = None,
    archs: list[Arch] | None = None,
) -> float:
    """Accumulate the gradients of ``archs`` (default: largest, smallest and ``num_random``
    random subnets; the first one is the distillation teacher), with ``net``, ``images`` and
    ``masks`` on ``compute``'s device."""
    steps = steps or Steps()
    if archs is None:
        archs = [space.largest(), space.smallest()]
        archs += [space.sample(rng) for _ in range(num_random)]
    structure: Structure = net.structure
    teacher = None
    total = 0.0
    for j, arch in enumerate(archs):
        cfg = structure.net_config(arch)
        x = images
        with compute.autocast():
            if cfg.resolution != images.shape[-1]:
                x = F.interpolate(images, size=(cfg.resolution,) * 2, mode="bilinear",
                                  align_corners=False)
            logits = net(x, cfg)
            if logits.shape[-2:] != masks.shape[-2:]:
                logits = F.interpolate(logits, size=masks.shape[-2:], mode="bilinear",
                                       align_corners=False)
            loss = F.cross_entropy(logits, masks, ignore_index=IGNORE_INDEX)
            if distill and teacher is not None:
                loss = 0.5 * loss + 0.5 * _soft_loss(logits, teacher, masks)
            if distill and j == 0:
                teacher = F.softmax(logits.detach(), dim=1)
        steps.backward(loss)
        total += float(loss.detach())
    return total / len(archs)


@torch.no_grad()
def calibrate_bn_for_largest(net: DeepLabSupernet, batches: list[torch.Tensor],
                             compute: Compute = CPU) -> None:
    """Re-estimate running statistics with the full network (training mixes subnets' stats)."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.eval()
    for m in bns:  # only BN in training mode: dropout stays off, so the result is deterministic
        m.train()
    for x in batches:
        net(compute.to(x))
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum


def _optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise SpaceError(f"optimizer {cfg.optimizer!r} unknown; allowed: adam, sgd")


def train_supernet(
    space: SearchSpace,
    dataset: VOCSegmentation,
    out: Path,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    compute: Compute = CPU,
) -> dict[str, Any]:
    """Train ``space.supernet`` (a DeepLabSpace) on ``dataset``; checkpoint to ``out`` after
    every epoch. Returns a summary (epochs, steps, seconds, last loss). On CUDA the supernet is
    moved there once (and stays); batches are moved per step. No prefetching here: the batches
    and the sampled subnets draw from one random stream, in order."""
    net: DeepLabSupernet = compute.module(space.supernet)  # type: ignore[attr-defined]
    structure: Structure = net.structure
    if cfg.schedule not in SCHEDULES:
        raise SpaceError(f"schedule {cfg.schedule!r} unknown; allowed: {', '.join(SCHEDULES)}")
    phases = phase_epochs(cfg.epochs, cfg.phase_epochs)
    crop = cfg.crop or max(structure.resolutions)
    batches = AugmentedBatches(dataset, crop)
    if batches.steps_per_epoch(cfg.batch_size) < 1:
        raise SpaceError(
            f"dataset split has {len(dataset)} images, fewer than one batch of {cfg.batch_size}"
        )
    opt = _optimizer(net, cfg)
    steps = batches.steps_per_epoch(cfg.batch_size)
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    total_steps = steps * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: max(0.0, 1 - s / max(total_steps, 1)) ** 0.9  # DeepLab's poly schedule
    )
    start_epoch, step = 0, 0
    if resume and out.exists():
        state = ckpt.read_checkpoint(out)
        ckpt.check_structure(state, structure, out)
        ckpt.load_into(net, ckpt.state_dict_of(state, out), out)
        if "optimizer_state" in state:
            opt.load_state_dict(state["optimizer_state"])
        if "scheduler_state" in state:
            sched.load_state_dict(state["scheduler_state"])
        start_epoch, step = int(state.get("epoch", 0)), int(state.get("step", 0))
        log.info("resuming from %s at epoch %d", out, start_epoch)
    t0 = time.perf_counter()
    loss = float("nan")
    scaled = compute.steps()
    for epoch in range(start_epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        net.train()
        # dropout draws from torch's generator: seed it per epoch so a resumed run is identical
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed * 100_003 + epoch)
            phase = phase_of(epoch, phases)
            for k, (images, masks) in enumerate(batches.epoch(cfg.batch_size, rng)):
                if k >= steps:
                    break
                opt.zero_grad(set_to_none=True)
                archs = step_archs(space, rng, schedule=cfg.schedule, phase=phase,
                                   num_random=cfg.num_random)
                loss = sandwich_step(net, space, compute.to(images), compute.to(masks), rng,
                                     num_random=cfg.num_random, distill=cfg.distill,
                                     compute=compute, steps=scaled, archs=archs)
                scaled.step(opt)
                sched.step()
                step += 1
                if progress:
                    progress(step, total_steps, loss)
        calib_rng = np.random.default_rng([cfg.seed, epoch, 1])
        calib = [images for (images, _m), _ in
                 zip(batches.epoch(cfg.batch_size, calib_rng), range(4), strict=False)]
        calibrate_bn_for_largest(net, calib, compute)
        net.eval()
        ckpt.save_checkpoint(out, {
            "model_state": net.state_dict(),
            "optimizer_state": opt.state_dict(),
            "scheduler_state": sched.state_dict(),
            "structure": structure.to_dict(),
            # a plain (largest-only) model is not ordered for slicing: loading it reorders
            "supernet_trained": cfg.schedule != "largest",
            "epoch": epoch + 1,
            "step": step,
            "train_config": asdict(cfg),
            "last_loss": loss,
        })
    return {"epochs": cfg.epochs, "steps": step, "seconds": time.perf_counter() - t0,
            "last_loss": loss, "checkpoint": str(out), "compute": compute.describe()}


def train_model(
    model: nn.Module,
    dataset: VOCSegmentation,
    *,
    resolution: int,
    epochs: int,
    batch_size: int = 8,
    lr: float = 2e-3,
    optimizer: str = "adam",
    weight_decay: float = 1e-4,
    seed: int = 0,
    max_steps_per_epoch: int | None = None,
    compute: Compute = CPU,
) -> dict[str, Any]:
    """Train one static model (a subnet from scratch, or a finalist's fine-tuning from its
    inherited weights) with the supernet's recipe; returns steps, seconds and the last loss.
    ``model`` is on ``compute``'s device; with ``compute.prefetch`` the augmented batches are
    prepared ahead in a thread (the same batches: only they draw from the epoch's stream)."""
    batches = AugmentedBatches(dataset, resolution)
    steps = batches.steps_per_epoch(batch_size)
    if steps < 1:
        raise SpaceError(f"dataset split has {len(dataset)} images, fewer than one batch of "
                         f"{batch_size}")
    if max_steps_per_epoch:
        steps = min(steps, max_steps_per_epoch)
    cfg = TrainConfig(lr=lr, optimizer=optimizer, weight_decay=weight_decay)
    opt = _optimizer(model, cfg)
    total = steps * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: max(0.0, 1 - s / max(total, 1)) ** 0.9
    )
    t0 = time.perf_counter()
    loss = float("nan")
    done = 0
    scaled = compute.steps()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(epochs):
            rng = np.random.default_rng([seed, epoch])
            model.train()
            for images, masks in compute.batches(islice(batches.epoch(batch_size, rng), steps)):
                opt.zero_grad(set_to_none=True)
                with compute.autocast():
                    out = F.cross_entropy(model(images), masks, ignore_index=IGNORE_INDEX)
                scaled.backward(out)
                scaled.step(opt)
                sched.step()
                loss = float(out.detach())
                done += 1
    model.eval()
    return {"steps": done, "seconds": time.perf_counter() - t0, "last_loss": loss}
