"""``paretonas data synth-voc DIR``: a small VOC-format dataset of textured shapes.

Each foreground class is a shape with its own texture (stripes of a class-specific orientation and
period) and a jittered class colour, drawn over a noisy colour-gradient background; objects may
overlap, and a thin band around each object is 255 (ignore), as in VOC. Images vary in size, so
the loader is exercised as on real data. The files are what a real VOC root holds; the reader does
not know the difference.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

#: what ``paretonas ... --help`` shows (the docstring is for developers)
CLI_HELP = (
    "Write a small VOC-format dataset of textured shapes (JPEG images, PNG masks, "
    "train/val lists) for the deeplabv3plus space."
)


log = logging.getLogger(__name__)

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond", "bar", "ellipse")
MAX_CLASSES = len(SHAPES) + 1


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (bit-interleaved), 256 RGB triples flattened."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def _shape_mask(kind: str, h: int, w: int, cy: float, cx: float, r: float,
                angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = ca * dx + sa * dy, -sa * dx + ca * dy
    if kind == "circle":
        return dx**2 + dy**2 <= r**2
    if kind == "square":
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    if kind == "triangle":
        return (v <= r * 0.7) & (v >= -r) & (np.abs(u) <= (v + r) * 0.6)
    if kind == "cross":
        arm_u = (np.abs(u) <= r * 0.3) & (np.abs(v) <= r)
        return arm_u | ((np.abs(v) <= r * 0.3) & (np.abs(u) <= r))
    if kind == "ring":
        d = np.sqrt(dx**2 + dy**2)
        return (d <= r) & (d >= r * 0.55)
    if kind == "diamond":
        return np.abs(u) + np.abs(v) <= r
    if kind == "bar":
        return (np.abs(u) <= r * 1.2) & (np.abs(v) <= r * 0.35)
    return (u / (r * 1.1)) ** 2 + (v / (r * 0.6)) ** 2 <= 1.0  # ellipse


def render(rng: np.random.Generator, num_classes: int, h: int, w: int,
           max_objects: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """One image (uint8 HxWx3) and its label mask (uint8 HxW, 255 on object borders)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    t = (xx / w * rng.uniform(-1, 1) + yy / h * rng.uniform(-1, 1)) / 2 + 0.5
    image = c0 * (1 - t[..., None]) + c1 * t[..., None] + rng.normal(0, 18, (h, w, 3))
    mask = np.zeros((h, w), dtype=np.uint8)
    border = np.zeros((h, w), dtype=bool)
    hues = np.random.default_rng(1234).uniform(30, 225, (MAX_CLASSES, 3))
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = int(rng.integers(1, num_classes))
        r = rng.uniform(0.12, 0.28) * min(h, w)
        cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
        region = _shape_mask(SHAPES[cls - 1], h, w, cy, cx, r, rng.uniform(0, np.pi))
        period = 3.0 + cls
        theta = cls * np.pi / num_classes
        phase = (np.cos(theta) * xx + np.sin(theta) * yy) * 2 * np.pi / period
        stripes = 0.5 + 0.5 * np.sin(phase)
        colour = hues[cls] + rng.normal(0, 20, 3)
        tex = colour[None, None, :] * (0.65 + 0.35 * stripes[..., None])
        image[region] = tex[region] + rng.normal(0, 10, (int(region.sum()), 3))
        mask[region] = cls
        edge = ndimage.binary_dilation(region, iterations=1) & ~ndimage.binary_erosion(region)
        border |= edge
    mask[border] = 255
    return np.clip(image, 0, 255).astype(np.uint8), mask


def generate(root: str | Path, *, n_train: int = 160, n_val: int = 64, num_classes: int = 6,
             min_size: int = 80, max_size: int = 112, seed: int = 0) -> Path:
    """Write the dataset under ``root`` (created); returns ``root``."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in 2..{MAX_CLASSES}, got {num_classes}")
    if n_train < 1 or n_val < 1:
        raise ValueError("n_train and n_val must be at least 1")
    if not 16 <= min_size <= max_size:
        raise ValueError(f"need 16 <= min_size <= max_size, got {min_size}, {max_size}")
    root = Path(root)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = voc_palette()
    splits = {"train": n_train, "val": n_val}
    for split, n in splits.items():
        ids = []
        for i in range(n):
            image_id = f"synth_{split}_{i:05d}"
            h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
            image, mask = render(rng, num_classes, h, w)
            Image.fromarray(image).save(root / "JPEGImages" / f"{image_id}.jpg", quality=92)
            png = Image.fromarray(mask, mode="P")
            png.putpalette(palette)
            png.save(root / "SegmentationClass" / f"{image_id}.png")
            ids.append(image_id)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    log.info("wrote %s images to %s", sum(splits.values()), root)
    return root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output directory (created)")
    parser.add_argument("--train", type=int, default=160, help="training images (default 160)")
    parser.add_argument("--val", type=int, default=64, help="validation images (default 64)")
    parser.add_argument("--classes", type=int, default=6,
                        help=f"classes incl. background, 2..{MAX_CLASSES} (default 6)")
    parser.add_argument("--min-size", type=int, default=80, help="smallest image side (px)")
    parser.add_argument("--max-size", type=int, default=112, help="largest image side (px)")
    parser.add_argument("--seed", type=int, default=0)


def main(args: argparse.Namespace) -> int:
    try:
        root = generate(args.dir, n_train=args.train, n_val=args.val, num_classes=args.classes,
                        min_size=args.min_size, max_size=args.max_size, seed=args.seed)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}")
        return 2
    print(f"wrote a VOC-format dataset ({args.train} train, {args.val} val, {args.classes} "
          f"classes) to {root}")
    return 0
