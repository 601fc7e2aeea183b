"""Quality metrics of BERT subnets: fidelity to the full model and task accuracy.

``TaskSetup`` reads and checks a GLUE-style task when the space is built (cheap, so bad files are
rejected before a study is queued); ``fit_head`` fits the classifier used when the checkpoint has
none; ``batched`` runs a model over token batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from paretonas_core.compute import CPU, Compute
from search_spaces.base import SpaceError
from search_spaces.bert.checkpoint import BertConfig
from search_spaces.bert.data import TaskSplit, label_indices, read_tsv
from search_spaces.paths import resolve_data_path


@dataclass
class TaskSetup:
    """A checked classification task: splits, label names, where the classifier comes from."""

    labels: list[str]
    from_checkpoint: bool
    dev: TaskSplit
    dev_targets: torch.Tensor
    train: TaskSplit | None

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @classmethod
    def build(cls, options: Any, cfg: BertConfig) -> TaskSetup:
        directory = resolve_data_path(options.task, field="search_space.options.task")
        if not directory.is_dir():
            raise SpaceError(f"task: {options.task!r} is not a directory holding train.tsv and "
                             "dev.tsv")
        if not (directory / "dev.tsv").is_file():
            raise SpaceError(f"task: {directory.name} has no dev.tsv")
        from_checkpoint = options.head == "checkpoint" or (
            options.head == "auto" and cfg.id2label is not None
        )
        if from_checkpoint and cfg.id2label is None:
            raise SpaceError("head: 'checkpoint' needs a BertForSequenceClassification checkpoint"
                             " (config.json architectures + id2label); use head='train'")
        has_train = (directory / "train.tsv").is_file()
        # with a checkpoint classifier train.tsv is optional (importance scores and fine-tuning
        # use it when present)
        train = read_tsv(directory / "train.tsv", limit=options.max_train_examples) \
            if has_train else None
        if from_checkpoint:
            labels = [cfg.id2label[i] for i in sorted(cfg.id2label)]  # type: ignore[index]
            source = "the checkpoint's classifier (config.json id2label)"
            if train is not None:
                label_indices(train, labels, source=source)
        else:
            if train is None:
                raise SpaceError(f"task: {directory.name} has no train.tsv to fit a head on")
            labels = sorted(set(train.labels))
            if len(labels) < 2:
                raise SpaceError(f"task: {train.path.name} has a single label {labels}; a "
                                 "classification task needs at least two")
            source = "the train split"
        dev = read_tsv(directory / "dev.tsv", limit=options.max_eval_examples)
        return cls(labels, from_checkpoint, dev, label_indices(dev, labels, source=source), train)


def batched(
    fn: Callable[[torch.Tensor], torch.Tensor], batches: list[torch.Tensor],
    compute: Compute = CPU,
) -> torch.Tensor:
    """Concatenate ``fn`` over token batches, without autograd. With a CUDA ``compute`` the
    batches are moved there (``fn``'s model is there already) and the result comes back to the
    CPU in float32, so metrics are computed as on a CPU-only machine."""
    with torch.inference_mode(), compute.autocast():
        out = torch.cat([fn(compute.to(ids)) for ids in batches])
    return out.float().cpu() if compute.is_cuda else out


def fit_head(features: torch.Tensor, targets: torch.Tensor, num_labels: int, *, seed: int = 0
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on sentence embeddings -> (weight [k, h], bias [k])."""
    from sklearn.linear_model import LogisticRegression

    x = features.numpy().astype(np.float64)
    y = targets.numpy()
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    clf.fit(x, y)
    w = np.zeros((num_labels, x.shape[1]))
    b = np.zeros(num_labels)
    if clf.coef_.shape[0] == 1:  # binary: sklearn keeps one row, logit(class 1) - logit(0)
        w[clf.classes_[1]], b[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
    else:
        w[clf.classes_], b[clf.classes_] = clf.coef_, clf.intercept_
    return torch.tensor(w, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean())


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return float((logits.argmax(dim=-1) == targets).float().mean())
