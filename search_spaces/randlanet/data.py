"""Point-cloud segmentation scenes in an S3DIS-style layout, validated on load.

Layout: ``<root>/<split>/<scene>.npy`` or ``.txt`` with splits ``train`` and ``val``. Each scene
is N rows of 7 columns ``x y z r g b label``: coordinates in metres, colours 0..255, integer
labels in ``[0, num_classes)`` (whitespace- or comma-separated for ``.txt``; an (N, 7) float
array for ``.npy``). This is the per-room layout most S3DIS pre-processing scripts write.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from search_spaces.base import SpaceError

log = logging.getLogger(__name__)

COLUMNS = ("x", "y", "z", "r", "g", "b", "label")
SUFFIXES = (".npy", ".txt")
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Scene:
    name: str
    xyz: np.ndarray  # (N, 3) float32, centred on the scene's centroid
    rgb: np.ndarray  # (N, 3) float32 in [0, 1]
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def _read_array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            text = path.read_text()
            delim = "," if "," in text.split("\n", 1)[0] else None
            with warnings.catch_warnings():  # an empty file is reported below, not warned about
                warnings.simplefilter("ignore", UserWarning)
                arr = np.loadtxt(path, delimiter=delim, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise SpaceError(f"{path.name}: cannot read it as a {path.suffix} scene: {exc}") from exc
    return np.asarray(arr)


def load_scene(path: Path, num_classes: int) -> Scene:
    """Read and validate one scene file (errors name the file and what is allowed)."""
    arr = _read_array(path)
    if arr.size == 0:
        raise SpaceError(f"{path.name}: the scene is empty (needs at least one point)")
    if arr.ndim != 2 or arr.shape[1] != len(COLUMNS):
        cols = arr.shape[1] if arr.ndim == 2 else f"a {arr.ndim}-d array"
        raise SpaceError(
            f"{path.name}: expected {len(COLUMNS)} columns ({' '.join(COLUMNS)}), got {cols}"
        )
    if not np.all(np.isfinite(arr)):
        raise SpaceError(f"{path.name}: contains NaN or infinite values")
    labels = arr[:, 6]
    if np.any(labels != np.round(labels)):
        raise SpaceError(f"{path.name}: labels must be integers")
    bad = np.unique(labels[(labels < 0) | (labels >= num_classes)])
    if bad.size:
        raise SpaceError(
            f"{path.name}: label(s) {bad.astype(int)[:10].tolist()} out of range; "
            f"allowed: 0..{num_classes - 1} (num_classes={num_classes})"
        )
    rgb = arr[:, 3:6]
    if rgb.min() < 0 or rgb.max() > 255:
        raise SpaceError(f"{path.name}: colours must be in 0..255, got {rgb.min()}..{rgb.max()}")
    xyz = arr[:, :3] - arr[:, :3].mean(axis=0)
    return Scene(
        name=path.stem,
        xyz=xyz.astype(np.float32),
        rgb=(rgb / 255.0).astype(np.float32),
        labels=labels.astype(np.int64),
    )


def scene_files(root: Path, split: str) -> list[Path]:
    """Scene files of ``split`` under ``root``, sorted by name."""
    folder = root / split
    if not folder.is_dir():
        raise SpaceError(
            f"{root}: no {split!r} folder; expected {root}/{{{','.join(SPLITS)}}}/*.npy|*.txt"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())
    if not files:
        raise SpaceError(f"{folder}: no scene files (*.npy or *.txt)")
    return files


def load_split(root: Path, split: str, num_classes: int, limit: int | None = None) -> list[Scene]:
    """The first ``limit`` scenes of ``split`` (sorted by file name: a fixed subset)."""
    files = scene_files(root, split)[:limit]
    log.info("loading %d %s scenes from %s", len(files), split, root)
    return [load_scene(p, num_classes) for p in files]


def sample_points(scene: Scene, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``num_points`` points in random order (RandLA-Net's random sampling relies on
    the order). Scenes with fewer points are padded by repeating random points, as the
    reference implementation does."""
    n = len(scene)
    if n >= num_points:
        return rng.choice(n, num_points, replace=False)
    extra = rng.choice(n, num_points - n, replace=True)
    return rng.permutation(np.concatenate([np.arange(n), extra]))


def features(scene: Scene, idx: np.ndarray) -> torch.Tensor:
    """(len(idx), 6) tensor of xyz + rgb for the model."""
    return torch.from_numpy(np.concatenate([scene.xyz[idx], scene.rgb[idx]], axis=1))
