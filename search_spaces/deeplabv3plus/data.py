"""A PASCAL-VOC-format segmentation dataset reader (real VOC2012 or ``paretonas data synth-voc``).

Layout: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette or grayscale PNG whose
pixel values are class indices, 255 = ignore), ``ImageSets/Segmentation/<split>.txt`` (one id per
line). Every problem is a ``SpaceError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from search_spaces.base import SpaceError

IGNORE_INDEX = 255
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VOCSegmentation:
    """One split of a VOC-format dataset; ``load(i)`` returns (RGB uint8 HxWx3, labels HxW)."""

    def __init__(self, root: str | Path, split: str, *, num_classes: int):
        self.root = Path(root)
        self.split = split
        self.num_classes = num_classes
        if not self.root.is_dir():
            raise SpaceError(f"dataset directory {self.root} does not exist or is not a directory")
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            if not (self.root / sub).is_dir():
                raise SpaceError(
                    f"dataset {self.root} lacks {sub}/ (expected VOC layout: JPEGImages/, "
                    "SegmentationClass/, ImageSets/Segmentation/{train,val}.txt)"
                )
        list_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not list_file.is_file():
            have = sorted(p.stem for p in list_file.parent.glob("*.txt"))
            raise SpaceError(
                f"dataset {self.root} has no split {split!r} ({list_file}); has {have}"
            )
        try:
            ids = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise SpaceError(f"{list_file}: cannot read ({exc})") from exc
        if not ids:
            raise SpaceError(f"{list_file} lists no images")
        bad = [i for i in ids if "/" in i or "\\" in i or i.startswith(".")]
        if bad:
            raise SpaceError(f"{list_file}: invalid image id(s) {bad[:5]}")
        missing = [
            str(p.relative_to(self.root))
            for i in ids
            for p in (self.image_path(i), self.mask_path(i))
            if not p.is_file()
        ]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise SpaceError(f"dataset {self.root}: missing file(s) {missing[:5]}{more}")
        self.ids = ids

    def image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.root / "SegmentationClass" / f"{image_id}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image_id = self.ids[i]
        ipath, mpath = self.image_path(image_id), self.mask_path(image_id)
        try:
            with Image.open(ipath) as im:
                image = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise SpaceError(f"{ipath}: not a readable image ({exc})") from exc
        try:
            with Image.open(mpath) as m:
                if m.mode not in ("P", "L"):
                    raise SpaceError(
                        f"{mpath}: mask mode is {m.mode}; expected a palette (P) or grayscale (L) "
                        "PNG whose values are class indices"
                    )
                mask = np.asarray(m)
        except (OSError, UnidentifiedImageError) as exc:
            raise SpaceError(f"{mpath}: not a readable PNG ({exc})") from exc
        if image.shape[:2] != mask.shape:
            raise SpaceError(
                f"{mpath}: mask size {mask.shape[1]}x{mask.shape[0]} differs from image "
                f"{ipath.name} size {image.shape[1]}x{image.shape[0]}"
            )
        values = np.unique(mask)
        bad = [int(v) for v in values if v >= self.num_classes and v != IGNORE_INDEX]
        if bad:
            raise SpaceError(
                f"{mpath}: class index(es) {bad} out of range; allowed 0..{self.num_classes - 1} "
                f"and {IGNORE_INDEX} (ignore)"
            )
        return image, mask

    def class_presence(self) -> np.ndarray:
        """``[N, num_classes]`` bool: which classes each image's mask contains."""
        out = np.zeros((len(self), self.num_classes), dtype=bool)
        for i in range(len(self)):
            _, mask = self.load(i)
            values = np.unique(mask)
            out[i, values[values < self.num_classes]] = True
        return out


def to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """RGB uint8 HxWx3 -> normalised float ``[3, size, size]`` (bilinear resize)."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1).div_(255.0)
    x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)[0]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def mask_to_tensor(mask: np.ndarray, size: int) -> torch.Tensor:
    """Labels HxW -> long ``[size, size]`` (nearest resize keeps indices and 255 intact)."""
    m = torch.from_numpy(np.array(mask, dtype=np.float32))[None, None]
    return F.interpolate(m, size=(size, size), mode="nearest")[0, 0].long()
