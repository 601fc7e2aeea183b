"""The small DeepLabV3+ set-up shared by ``make demo`` and ``bench/deeplab.py``: a synthetic
VOC dataset and a supernet trained on it for a few minutes on 2 CPU cores, both cached under one
folder (keyed by their configuration, and resumed if a previous run was interrupted).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Supernet structure (the space's structural options).
STRUCTURE: dict[str, Any] = {
    "num_classes": 6,
    "width_mult": 0.25,
    "aspp_channels": 32,
    "low_level_channels": 8,
    "decoder_channels": 32,
    "resolutions": [48, 64],
}
DATA: dict[str, Any] = {"n_train": 160, "n_val": 96, "num_classes": 6, "seed": 0}
TRAIN: dict[str, Any] = {"epochs": 12, "batch_size": 8, "num_random": 2, "seed": 0}


def _key(*parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def prepare(
    root: str | Path,
    *,
    epochs: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Make sure ``root`` holds the dataset and a trained supernet; return the space options
    (paths relative to ``root``, which must be one of the data directories) and timings.
    ``threads``: torch threads while training (1 by default: on a CPU shared with other jobs,
    more threads than free cores make this small model many times slower)."""
    import torch

    from search_spaces.deeplabv3plus.data import VOCSegmentation
    from search_spaces.deeplabv3plus.space import DeepLabOptions, DeepLabSpace
    from search_spaces.deeplabv3plus.synth import generate
    from search_spaces.deeplabv3plus.training import TrainConfig, train_supernet

    root = Path(root)
    train_cfg = {**TRAIN, "epochs": epochs or TRAIN["epochs"]}
    data_dir = f"voc-{_key(DATA)}"
    marker = root / data_dir / ".complete"
    if not marker.exists():
        log.info("writing the synthetic VOC dataset to %s", root / data_dir)
        generate(root / data_dir, **DATA)
        marker.write_text(json.dumps(DATA))
    ckpt_name = f"supernet-{_key(STRUCTURE, DATA, train_cfg)}.pt"
    out = root / ckpt_name
    state: dict[str, Any] = {}
    done_file = out.with_suffix(".json")
    if done_file.exists():
        state = json.loads(done_file.read_text())
    else:
        log.info("training the demo supernet (%s epochs) into %s", train_cfg["epochs"], out)
        space = DeepLabSpace(DeepLabOptions(**STRUCTURE))
        dataset = VOCSegmentation(root / data_dir, "train", num_classes=STRUCTURE["num_classes"])
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            summary = train_supernet(space, dataset, out, TrainConfig(**train_cfg), resume=True,
                                     progress=progress)
        finally:
            torch.set_num_threads(before)
        state = {"train_seconds": summary["seconds"], "steps": summary["steps"],
                 "train_config": train_cfg}
        done_file.write_text(json.dumps(state))
    return {"options": {**STRUCTURE, "checkpoint": ckpt_name, "data_dir": data_dir},
            "root": str(root), **state}
