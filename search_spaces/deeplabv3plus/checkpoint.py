"""Loading and saving DeepLabV3+ supernet checkpoints.

Accepted inputs (``torch.load`` with ``weights_only=True``, so a file cannot run code):

* our own checkpoints (``format`` = ``paretonas.deeplabv3plus/1``): ``model_state`` plus the
  ``structure`` they were trained with and ``supernet_trained`` (channels already ordered);
* DeepLabV3+ checkpoints in the torchvision-MobileNetV2 layout of VainF/DeepLabV3Plus-Pytorch
  (``{"model_state": ...}``), plain state dicts, ``{"state_dict": ...}`` / ``{"model": ...}``,
  with or without a DataParallel ``module.`` prefix.

A checkpoint for another architecture or size is a ``SpaceError`` listing missing, unexpected and
mis-shaped keys.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from search_spaces.base import SpaceError
from search_spaces.deeplabv3plus.structure import Structure

FORMAT = "paretonas.deeplabv3plus/1"
_SHOWN = 8


def read_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load`` the file safely or raise SpaceError naming it."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise SpaceError(
            f"checkpoint {path}: cannot be read as a torch checkpoint ({exc})"
        ) from exc
    if not isinstance(obj, Mapping):
        raise SpaceError(f"checkpoint {path}: expected a dict, found {type(obj).__name__}")
    return dict(obj)


def state_dict_of(obj: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The model state inside a checkpoint dict, ``module.`` prefixes removed."""
    state: Any = obj
    for key in ("model_state", "state_dict", "model"):
        if key in obj and isinstance(obj[key], Mapping):
            state = obj[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise SpaceError(
            f"checkpoint {path}: no tensors found (looked for model_state, state_dict, model, "
            "or a plain state dict)"
        )
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def _listing(keys: list[str]) -> str:
    more = f" ... and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def check_structure(obj: Mapping[str, Any], structure: Structure, path: Path) -> None:
    """Our checkpoints record their structure: options that differ are named."""
    saved = obj.get("structure")
    if not isinstance(saved, Mapping):
        return
    ours = structure.to_dict()
    diffs = [
        f"{k}: checkpoint has {saved[k]!r}, options say {ours[k]!r}"
        for k in ours
        if k in saved and list(_as_list(saved[k])) != list(_as_list(ours[k]))
    ]
    if diffs:
        raise SpaceError(
            f"checkpoint {path} was trained with another structure; set the options to match: "
            + "; ".join(diffs)
        )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def load_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Strictly load ``state`` into ``model``; every mismatch is listed in one error."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {_listing(shapes)}")
        raise SpaceError(
            f"checkpoint {path} does not fit this DeepLabV3+ (MobileNetV2 backbone in "
            f"torchvision's layout, {model.structure.num_classes} classes, width "
            f"{model.structure.width_mult}): " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (temp file + rename) so an interrupted save never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def torchvision_backbone_state(
    state: Mapping[str, torch.Tensor], model: torch.nn.Module, path: Path
) -> dict[str, torch.Tensor]:
    """Map a torchvision ``mobilenet_v2`` classifier state dict (``features.0..17``) onto the
    supernet's backbone keys; ``features.18`` and ``classifier.*`` have no counterpart. Missing
    or mis-shaped backbone keys are a SpaceError."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        index, _, rest = rest.partition(".")
        if head != "features" or not index.isdigit() or int(index) > 17:
            continue
        i = int(index)
        part = f"low_level_features.{i}" if i <= 3 else f"high_level_features.{i - 4}"
        mapped[f"backbone.{part}.{rest}"] = value
    expected = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    missing = sorted(set(expected) - set(mapped))
    shapes = sorted(
        f"{k} (checkpoint {tuple(mapped[k].shape)}, model {tuple(v.shape)})"
        for k, v in expected.items()
        if k in mapped and tuple(mapped[k].shape) != tuple(v.shape)
    )
    if missing or shapes:
        parts = []
        if missing:
            parts.append(f"missing backbone keys ({len(missing)}): {_listing(missing)}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {_listing(shapes)}")
        raise SpaceError(
            f"{path} is not a torchvision MobileNetV2 of this width: " + "; ".join(parts)
        )
    return {k: mapped[k] for k in expected}
