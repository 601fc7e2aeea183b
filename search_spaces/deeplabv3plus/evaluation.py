"""Running a (static) DeepLabV3+ on VOC images: per-image confusion matrices and BN
re-calibration. Preprocessed image tensors are cached per resolution, since every candidate of a
study is evaluated on the same validation subset.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paretonas_core.compute import CPU, Compute
from paretonas_core.segmentation import confusion_matrix
from search_spaces.deeplabv3plus.data import VOCSegmentation, to_tensor


class ImageCache:
    """Images of one split, loaded once and resized on demand (one tensor per resolution).

    Entries are kept until ``max_bytes`` is reached (the subset of a study fits easily; the full
    VOC validation set at 512 px would not), after which images are re-read when needed."""

    def __init__(self, dataset: VOCSegmentation, *, max_bytes: int = 1 << 30):
        self.dataset = dataset
        self.max_bytes = max_bytes
        self._bytes = 0
        self._raw: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._resized: dict[tuple[int, int], torch.Tensor] = {}
        self._lock = threading.Lock()

    def _room(self, nbytes: int) -> bool:
        if self._bytes + nbytes > self.max_bytes:
            return False
        self._bytes += nbytes
        return True

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            hit = self._raw.get(i)
        if hit is None:
            hit = self.dataset.load(i)
            with self._lock:
                if i not in self._raw and self._room(hit[0].nbytes + hit[1].nbytes):
                    self._raw[i] = hit
        return hit

    def tensor(self, i: int, resolution: int) -> torch.Tensor:
        key = (i, resolution)
        with self._lock:
            hit = self._resized.get(key)
        if hit is None:
            hit = to_tensor(self.raw(i)[0], resolution)
            with self._lock:
                if key not in self._resized and self._room(hit.numel() * hit.element_size()):
                    self._resized[key] = hit
        return hit

    def batch(self, indices: list[int], resolution: int) -> torch.Tensor:
        return torch.stack([self.tensor(i, resolution) for i in indices])


@torch.inference_mode()
def per_image_confusion(
    model: nn.Module,
    cache: ImageCache,
    indices: np.ndarray | list[int],
    *,
    resolution: int,
    num_classes: int,
    batch_size: int = 8,
    compute: Compute = CPU,
) -> np.ndarray:
    """``[len(indices), C, C]``: the model's prediction on each image (input resized to
    ``resolution``, logits resized back to the label's own size) against its labels. ``model``
    must already be on ``compute``'s device."""
    model.eval()
    indices = [int(i) for i in indices]
    out = np.zeros((len(indices), num_classes, num_classes), dtype=np.int64)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        with compute.autocast():
            logits = model(compute.to(cache.batch(chunk, resolution)))
        for j, i in enumerate(chunk):
            mask = cache.raw(i)[1]
            up = F.interpolate(logits[j : j + 1], size=mask.shape, mode="bilinear",
                               align_corners=False)
            # max(dim=0): 10x faster than argmax(0) on CPU here; .cpu() is a no-op there
            pred = up[0].max(dim=0).indices.cpu().numpy()
            out[start + j] = confusion_matrix(pred, mask, num_classes)
    return out


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module, cache: ImageCache, indices: list[int], *, resolution: int, batch_size: int,
    compute: Compute = CPU,
) -> int:
    """Reset every BN's running statistics and re-estimate them (cumulative average) on the
    given training images; returns the number of batches used. Only ``model`` is touched (it
    must be on ``compute``'s device; no autocast: the statistics are kept in float32)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.eval()
    for m in bns:  # only BN in training mode: dropout stays off, so the result is deterministic
        m.train()
    batches = 0
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        if len(chunk) < 2:  # BN in train mode needs more than one value per channel
            break
        model(compute.to(cache.batch(chunk, resolution)))
        batches += 1
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum
    model.eval()
    return batches
