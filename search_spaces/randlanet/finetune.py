"""Fine-tune one extracted RandLA-Net subnet (a finalist, from its inherited weights) on the
training scenes or a subset of them, recording per-scene success for dataset pruning.

Epochs go over the chosen scenes in a seeded random order, ``batch`` scenes a step, each scene
sampled to the arch's number of points and rotated about z at random (the supernet's
augmentation, ``train.make_batch``), with the supernet's class-weighted cross-entropy. A scene
counts as correct in an epoch when the point accuracy of its training forward pass is at least
``score_threshold``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from paretonas_core.compute import CPU, Compute
from search_spaces.randlanet.data import Scene, features, sample_points
from search_spaces.randlanet.model import RandLANet
from search_spaces.randlanet.train import class_weights
from search_spaces.success import SuccessLog, subset_of


def _scene_batch(scene_list: list[Scene], idx: np.ndarray, num_points: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for i in idx:
        scene = scene_list[int(i)]
        pts = sample_points(scene, num_points, rng)
        x = features(scene, pts).clone()
        angle = rng.uniform(0, 2 * math.pi)
        c, s = math.cos(angle), math.sin(angle)
        rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        x[:, :3] = x[:, :3] @ rot.T
        xs.append(x)
        ys.append(torch.from_numpy(scene.labels[pts]))
    return torch.stack(xs), torch.stack(ys)


def finetune_subnet(
    model: RandLANet, scene_list: list[Scene], *, num_points: int, epochs: int, batch: int,
    lr: float, seed: int, compute: Compute = CPU, examples: list[int] | None = None,
    record_success: bool = False, score_threshold: float = 0.9,
) -> dict[str, Any]:
    """Train ``model`` (on ``compute``'s device) in place with Adam and a cosine schedule on
    the ``examples`` scenes (default all); returns steps, seconds, losses and, with
    ``record_success``, each scene's ``success_rate``."""
    chosen = subset_of(len(scene_list), examples)
    log = SuccessLog(len(scene_list)) if record_success else None
    weights = compute.to(class_weights([scene_list[int(i)] for i in chosen],
                                       model.cfg.num_classes))
    steps_total = max(-(-len(chosen) // batch) * epochs, 1)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_total)
    scaled = compute.steps()
    losses: list[float] = []
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        order = chosen[rng.permutation(len(chosen))]
        if log is not None:
            log.new_epoch()
        total = 0.0
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            x, y = compute.to(_scene_batch(scene_list, idx, num_points, rng))
            opt.zero_grad(set_to_none=True)
            with compute.autocast():
                logits = model(x)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                       weight=weights)
            scaled.backward(loss)
            scaled.step(opt)
            sched.step()
            if log is not None:
                acc = (logits.detach().argmax(-1) == y).float().mean(-1).cpu().tolist()
                log.mark(idx, [a >= score_threshold for a in acc])
            total += float(loss.detach()) * len(idx)
        losses.append(round(total / len(order), 5))
    model.eval()
    return {"steps": epochs * -(-len(chosen) // batch), "epoch_losses": losses,
            "seconds": round(time.perf_counter() - t0, 2), "train_examples": int(len(chosen)),
            "train_set_size": len(scene_list),
            **({"success_rate": log.rates()} if log is not None else {})}
