"""Synthetic indoor scenes in the S3DIS-style layout of ``data.py``, for demos and tests.

Each scene is a floor (class 0, 3.5 m square) with 4-8 boxes (1), cylinders (2) and spheres (3)
standing on it; points are sampled on the surfaces in proportion to their area, with coordinate
noise, and coloured by a per-class base colour, a per-object tint and per-point noise (colour
alone is not enough to separate the classes, geometry is needed).

CLI: ``paretonas data synth-scenes DIR --train 16 --val 4 --points 4096``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

#: what ``paretonas ... --help`` shows (the docstring is for developers)
CLI_HELP = (
    "Write synthetic indoor point-cloud scenes (floor, boxes, cylinders, spheres) in the "
    "S3DIS-style layout the randlanet space reads."
)


log = logging.getLogger(__name__)

CLASSES = ("floor", "box", "cylinder", "sphere")
_BASE_RGB = np.array([[150, 140, 120], [170, 110, 90], [110, 150, 120], [120, 120, 170]], float)
ROOM_M = 3.5


def _box(rng: np.random.Generator, n: int, centre: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Points on the 5 visible faces (no bottom) of an axis-aligned box standing on z=0."""
    sx, sy, sz = size
    areas = np.array([sx * sy, sx * sz, sx * sz, sy * sz, sy * sz])
    face = rng.choice(5, n, p=areas / areas.sum())
    u, v = rng.random(n), rng.random(n)
    pts = np.empty((n, 3))
    pts[:, 0] = (u - 0.5) * sx
    pts[:, 1] = (v - 0.5) * sy
    pts[:, 2] = rng.random(n) * sz
    pts[face == 0, 2] = sz
    pts[face == 1, 1] = -sy / 2
    pts[face == 2, 1] = sy / 2
    pts[face == 3, 0] = -sx / 2
    pts[face == 4, 0] = sx / 2
    return pts + np.array([centre[0], centre[1], 0.0])


def _cylinder(rng: np.random.Generator, n: int, centre: np.ndarray, r: float, h: float):
    side = 2 * np.pi * r * h
    top = np.pi * r * r
    on_top = rng.random(n) < top / (side + top)
    theta = rng.random(n) * 2 * np.pi
    rad = np.where(on_top, r * np.sqrt(rng.random(n)), r)
    z = np.where(on_top, h, rng.random(n) * h)
    return np.stack([centre[0] + rad * np.cos(theta), centre[1] + rad * np.sin(theta), z], 1)


def _sphere(rng: np.random.Generator, n: int, centre: np.ndarray, r: float) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * r + np.array([centre[0], centre[1], r])


def make_scene(rng: np.random.Generator, n_points: int, *, noise_m: float = 0.01) -> np.ndarray:
    """One scene as an (n_points, 7) float32 array of x y z r g b label."""
    n_objects = int(rng.integers(4, 9))
    kinds = rng.integers(1, 4, n_objects)
    centres = rng.uniform(-ROOM_M / 2 + 0.6, ROOM_M / 2 - 0.6, (n_objects, 2))
    # rough surface areas decide how many points each part gets
    shapes, areas = [], [ROOM_M * ROOM_M]
    for kind in kinds:
        if kind == 1:
            size = rng.uniform([0.3, 0.3, 0.3], [1.0, 1.0, 1.0])
            shapes.append(("box", size))
            areas.append(size[0] * size[1] + 2 * size[2] * (size[0] + size[1]))
        elif kind == 2:
            r, h = rng.uniform(0.15, 0.4), rng.uniform(0.4, 1.2)
            shapes.append(("cyl", (r, h)))
            areas.append(2 * np.pi * r * h + np.pi * r * r)
        else:
            r = rng.uniform(0.2, 0.5)
            shapes.append(("sph", r))
            areas.append(4 * np.pi * r * r)
    counts = rng.multinomial(n_points, np.array(areas) / np.sum(areas))
    parts = [np.column_stack([rng.uniform(-ROOM_M / 2, ROOM_M / 2, (counts[0], 2)),
                              np.zeros(counts[0])])]
    labels = [np.zeros(counts[0])]
    tints = [rng.normal(0, 12, 3)]
    for (kind, param), centre, n, label in zip(shapes, centres, counts[1:], kinds, strict=True):
        if kind == "box":
            parts.append(_box(rng, n, centre, param))
        elif kind == "cyl":
            parts.append(_cylinder(rng, n, centre, *param))
        else:
            parts.append(_sphere(rng, n, centre, param))
        labels.append(np.full(n, label))
        tints.append(rng.normal(0, 25, 3))
    xyz = np.concatenate(parts) + rng.normal(0, noise_m, (n_points, 3))
    label = np.concatenate(labels).astype(int)
    tint = np.concatenate(
        [np.repeat(t[None], len(p), 0) for t, p in zip(tints, parts, strict=True)]
    )
    rgb = np.clip(_BASE_RGB[label] + tint + rng.normal(0, 15, (n_points, 3)), 0, 255)
    return np.column_stack([xyz, rgb, label]).astype(np.float32)


def write_dataset(root: Path, *, n_train: int, n_val: int, points: int, seed: int = 0,
                  fmt: str = "npy") -> list[Path]:
    """Write ``n_train`` + ``n_val`` scenes under ``root/{train,val}``; returns the files."""
    rng = np.random.default_rng(seed)
    written = []
    for split, count in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            arr = make_scene(rng, points)
            path = root / split / f"scene_{i:03d}.{fmt}"
            if fmt == "npy":
                np.save(path, arr)
            else:
                np.savetxt(path, arr, fmt="%.4f %.4f %.4f %d %d %d %d")
            written.append(path)
    log.info("wrote %d scenes to %s", len(written), root)
    return written


# --- CLI module (``paretonas data synth-scenes DIR``) ------------------------------------------
def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder (train/ and val/ are created in it)")
    parser.add_argument("--train", type=_positive, default=16, help="training scenes")
    parser.add_argument("--val", type=_positive, default=4, help="validation scenes")
    parser.add_argument("--points", type=_positive, default=8192, help="points per scene")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("npy", "txt"), default="npy")


def main(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if root.exists() and not root.is_dir():
        print(f"error: {root} exists and is not a directory", file=sys.stderr)
        return 2
    files = write_dataset(root, n_train=args.train, n_val=args.val, points=args.points,
                          seed=args.seed, fmt=args.format)
    print(f"wrote {len(files)} scenes ({args.train} train, {args.val} val, {args.points} points "
          f"each, classes {', '.join(CLASSES)}) under {root}")
    return 0
