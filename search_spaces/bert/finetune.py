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
from search_spaces.success import SuccessLog, subset_of

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
    compute: Compute = CPU, examples: list[int] | None = None, record_success: bool = False,
    score_threshold: float = 0.9,
) -> dict[str, Any]:
    """Train ``model`` (on ``compute``'s device) in place with AdamW on the ``examples``
    (indices of the training texts; default all); returns what happened (for the trial's
    info), with each text's ``success_rate`` when ``record_success`` (a sentence is correct
    when its predicted label is, or under distillation when its cosine similarity to the
    teacher is at least ``score_threshold``)."""
    texts, targets, objective = _training_data(rt, compute)
    targets = compute.to(targets)
    chosen = subset_of(len(texts), examples)
    log = SuccessLog(len(texts)) if record_success else None
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
            order = chosen[torch.randperm(len(chosen), generator=gen).numpy()].tolist()
            if log is not None:
                log.new_epoch()
            total = 0.0
            for start in range(0, len(order), size):
                idx = order[start:start + size]
                ids = compute.to(rt.tok([texts[i] for i in idx]))
                with compute.autocast():
                    if distill:
                        emb = F.normalize(model.embed(ids), dim=-1)
                        cos = (emb * targets[idx]).sum(-1)
                        loss = (1.0 - cos).mean()
                        correct = cos.detach() >= score_threshold
                    else:
                        logits = model(ids)
                        loss = F.cross_entropy(logits, targets[idx])
                        correct = logits.detach().argmax(-1) == targets[idx]
                if log is not None:
                    log.mark(idx, correct.cpu().tolist())
                opt.zero_grad(set_to_none=True)
                scaled.backward(loss)
                scaled.step(opt)
                total += float(loss.detach()) * len(idx)
                steps += 1
            epoch_losses.append(total / len(order))
    model.eval().requires_grad_(False)
    return {
        "objective": objective, "train_examples": len(chosen), "train_set_size": len(texts),
        "steps": steps,
        "epoch_losses": [round(v, 5) for v in epoch_losses],
        "seconds": round(time.perf_counter() - t0, 2),
        **({"success_rate": log.rates()} if log is not None else {}),
    }
