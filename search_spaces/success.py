"""Per-example success during fine-tuning (dataset pruning by success rate).

A space's ``finetune`` called with ``record_success=True`` marks, in each epoch, whether each
training example (an image, a scene, a sentence) was predicted correctly in its training forward
pass: no extra passes, the loss's own logits. ``SuccessLog.rates()`` is then each example's
success rate over the epochs, from which ``service.engine.data_pruning`` derives training subsets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class SuccessLog:
    """Correct/incorrect per (epoch, example) of a training set of ``size`` examples."""

    def __init__(self, size: int):
        self.size = size
        self.epochs: list[np.ndarray] = []

    def new_epoch(self) -> None:
        # -1: not seen this epoch (e.g. the last partial batch was dropped)
        self.epochs.append(np.full(self.size, -1, dtype=np.int8))

    def mark(self, examples: Iterable[int], correct: Iterable[bool]) -> None:
        row = self.epochs[-1]
        for i, ok in zip(examples, correct, strict=True):
            row[int(i)] = 1 if ok else 0

    def rates(self) -> list[float]:
        """Each example's fraction of correct epochs among the epochs it was seen in (0 when
        never seen: an example the model never got to learn is kept, not pruned)."""
        if not self.epochs:
            return [0.0] * self.size
        m = np.stack(self.epochs)
        seen = (m >= 0).sum(0)
        hits = (m == 1).sum(0)
        return [round(float(h / s), 6) if s else 0.0 for h, s in zip(hits, seen, strict=True)]


def subset_of(size: int, examples: Sequence[int] | None) -> np.ndarray:
    """Indices of the training examples to train on (all of them when ``examples`` is None),
    checked against the training set's size: a subset persisted for one data set must not
    silently index another."""
    if examples is None:
        return np.arange(size)
    idx = np.asarray(list(examples), dtype=np.int64)
    if idx.size == 0:
        raise ValueError("the training subset is empty")
    if idx.min() < 0 or idx.max() >= size:
        raise ValueError(f"training subset indices must be in 0..{size - 1}; got "
                         f"{int(idx.min())}..{int(idx.max())}")
    return idx
