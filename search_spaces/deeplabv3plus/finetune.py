"""Fine-tune one extracted DeepLabV3+ subnet (a finalist, from its inherited weights) on the
training split or a subset of it, recording per-image success for dataset pruning.

The supernet's recipe as ``training.train_model`` (same augmentation, optimizer, poly schedule),
but over an explicit list of training images so that a pruned subset can be trained on and each
image's training forward pass can be scored: an image counts as correct in an epoch when its
pixel accuracy (labelled pixels) is at least ``score_threshold``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paretonas_core.compute import CPU, Compute
from search_spaces.base import SpaceError
from search_spaces.deeplabv3plus.data import IGNORE_INDEX, VOCSegmentation
from search_spaces.deeplabv3plus.training import AugmentedBatches, TrainConfig, _optimizer
from search_spaces.success import SuccessLog, subset_of


def pixel_accuracies(logits: torch.Tensor, masks: torch.Tensor) -> list[float]:
    """Each image's accuracy over its labelled pixels (1.0 for an image with none)."""
    pred = logits.argmax(1)
    keep = masks != IGNORE_INDEX
    hits = ((pred == masks) & keep).flatten(1).sum(1).float()
    total = keep.flatten(1).sum(1).float()
    return torch.where(total > 0, hits / total.clamp(min=1), torch.ones_like(total)).tolist()


def finetune_model(
    model: nn.Module, dataset: VOCSegmentation, *, resolution: int, epochs: int,
    batch_size: int, lr: float, seed: int, compute: Compute = CPU,
    examples: list[int] | None = None, record_success: bool = False,
    score_threshold: float = 0.9,
) -> dict[str, Any]:
    """Train ``model`` (on ``compute``'s device) in place on ``examples`` (indices into
    ``dataset``; default all); returns steps, seconds, the last loss, the examples trained on,
    and with ``record_success`` each image's ``success_rate``."""
    chosen = subset_of(len(dataset), examples)
    if len(chosen) < 2:  # BatchNorm in training mode needs two images a batch
        raise SpaceError(f"fine-tuning needs at least 2 training images; got {len(chosen)}")
    batches = AugmentedBatches(dataset, resolution)
    log = SuccessLog(len(dataset)) if record_success else None
    per_epoch = -(-len(chosen) // batch_size)
    opt = _optimizer(model, TrainConfig(lr=lr, optimizer="adam"))
    total = max(per_epoch * epochs, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / total) ** 0.9)
    scaled = compute.steps()
    t0, loss, done = time.perf_counter(), float("nan"), 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(epochs):
            rng = np.random.default_rng([seed, epoch])
            order = chosen[rng.permutation(len(chosen))]
            if log is not None:
                log.new_epoch()
            model.train()
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                if len(idx) < 2:  # a lone last image: BatchNorm cannot train on it
                    continue
                items = [batches.sample(int(i), rng) for i in idx]
                images, masks = compute.to((torch.stack([a for a, _ in items]),
                                            torch.stack([b for _, b in items])))
                opt.zero_grad(set_to_none=True)
                with compute.autocast():
                    logits = model(images)
                    out = F.cross_entropy(logits, masks, ignore_index=IGNORE_INDEX)
                scaled.backward(out)
                scaled.step(opt)
                sched.step()
                if log is not None:
                    accs = pixel_accuracies(logits.detach().float(), masks)
                    log.mark(idx, [a >= score_threshold for a in accs])
                loss = float(out.detach())
                done += 1
    model.eval()
    return {"steps": done, "seconds": time.perf_counter() - t0, "last_loss": loss,
            "train_examples": int(len(chosen)), "train_set_size": len(dataset),
            **({"success_rate": log.rates()} if log is not None else {})}
