"""Fine-tune an extracted BERT subnet (its inherited weights are the starting point).

* With a task: cross-entropy of the subnet's classifier on the task's train split.
* Without: distillation towards the full model, minimising ``1 - cos`` between the subnet's and
  the full model's mean-pooled embeddings on standard-library sentences that are *not* in the
  fidelity text set (the next ``max_train_examples`` after the first ``num_texts``), so the
  fidelity measured afterwards is on unseen text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from paretonas_core.compute import CPU, Compute
from search_spaces.base import SpaceError
from search_spaces.bert.corpus import stdlib_sentences
from search_spaces.bert.data import label_indices
from search_spaces.bert.evaluation import batched
from search_spaces.bert.model import BertNet

if TYPE_CHECKING:
    from search_spaces.bert.runtime import BertRuntime


def _training_data(rt: BertRuntime, compute: Compute = CPU) -> tuple[list, torch.Tensor, str]:
    o, task = rt.space.options, rt.space.task
    if task is not None and task.train is not None:
        targets = label_indices(task.train, task.labels, source="the train split")
        return list(task.train.texts), targets, "cross-entropy on the task's train split"
    if task is not None:
        raise SpaceError(f"task: {task.dev.path.parent.name} has no train.tsv to fine-tune on")
    skip = o.num_texts if rt.space.texts_path is None else 0
    texts = stdlib_sentences(skip + o.max_train_examples)[skip:]
    if len(texts) < 2:
        raise SpaceError("num_texts: no standard-library sentences left for distillation; "
                         "lower num_texts")
    batches = [rt.tok(texts[i:i + o.eval_batch_size])
               for i in range(0, len(texts), o.eval_batch_size)]
    targets = F.normalize(batched(rt.net_on(compute).embed, batches, compute), dim=-1)
    return texts, targets, "cosine distillation from the full model"


def finetune_subnet(
    rt: BertRuntime, model: BertNet, *, epochs: int, lr: float, seed: int,
    compute: Compute = CPU,
) -> dict[str, Any]:
    """Train ``model`` (on ``compute``'s device) in place with AdamW; returns what happened
    (for the trial's info)."""
    texts, targets, objective = _training_data(rt, compute)
    targets = compute.to(targets)
    distill = targets.dtype.is_floating_point
    size = rt.space.options.eval_batch_size
    gen = torch.Generator().manual_seed(seed)
    model.train().requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    epoch_losses: list[float] = []
    steps, t0 = 0, time.perf_counter()
    scaled = compute.steps()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(texts), generator=gen).tolist()
            total = 0.0
            for start in range(0, len(order), size):
                idx = order[start:start + size]
                ids = compute.to(rt.tok([texts[i] for i in idx]))
                with compute.autocast():
                    if distill:
                        emb = F.normalize(model.embed(ids), dim=-1)
                        loss = (1.0 - (emb * targets[idx]).sum(-1)).mean()
                    else:
                        loss = F.cross_entropy(model(ids), targets[idx])
                opt.zero_grad(set_to_none=True)
                scaled.backward(loss)
                scaled.step(opt)
                total += float(loss.detach()) * len(idx)
                steps += 1
            epoch_losses.append(total / len(texts))
    model.eval().requires_grad_(False)
    return {
        "objective": objective, "train_examples": len(texts), "steps": steps,
        "epoch_losses": [round(v, 5) for v in epoch_losses],
        "seconds": round(time.perf_counter() - t0, 2),
    }
