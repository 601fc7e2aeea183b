"""Supernet checkpoints: a safetensors file whose metadata holds the network's structure.

The structure (widths, depths, classes...) is in the header, so a space can read its dimensions
without loading any weights (cheap constructor, as the API requires).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from search_spaces.base import SpaceError
from search_spaces.randlanet.model import NetConfig, RandLANet, SubnetConfig

META_KEY = "paretonas"
FORMAT = "randlanet-supernet/1"


def config_to_dict(cfg: NetConfig) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "widths": list(cfg.sub.widths),
        "ratios": list(cfg.sub.ratios),
        "ks": list(cfg.sub.ks),
        "depths": list(cfg.all_depths),
        "num_classes": cfg.num_classes,
        "in_features": cfg.in_features,
        "stem": cfg.stem,
        "head": list(cfg.head),
    }


def config_from_dict(meta: dict[str, Any], *, knn: str = "kdtree") -> NetConfig:
    if meta.get("format") != FORMAT:
        raise ValueError(f"format {meta.get('format')!r} is not {FORMAT!r}")
    return NetConfig(
        sub=SubnetConfig(tuple(meta["widths"]), tuple(meta["ratios"]), tuple(meta["ks"])),
        num_classes=int(meta["num_classes"]),
        in_features=int(meta["in_features"]),
        depths=tuple(meta["depths"]),
        stem=int(meta["stem"]),
        head=tuple(meta["head"]),
        knn=knn,
    )


def save_supernet(net: RandLANet, path: Path, *, extra: dict[str, Any] | None = None) -> None:
    meta = {META_KEY: json.dumps(config_to_dict(net.cfg)), "extra": json.dumps(extra or {})}
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata=meta)


def read_config(path: Path, *, knn: str = "kdtree") -> NetConfig:
    """The network structure stored in ``path``'s header (no weights are read)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        return config_from_dict(json.loads(meta[META_KEY]), knn=knn)
    except (OSError, SafetensorError, KeyError, ValueError, TypeError) as exc:
        raise SpaceError(
            f"checkpoint {path.name}: not a RandLA-Net supernet checkpoint written by "
            f"'paretonas supernet train randlanet' ({type(exc).__name__}: {exc})"
        ) from exc


def load_supernet(path: Path, *, knn: str = "kdtree") -> RandLANet:
    net = RandLANet(read_config(path, knn=knn))
    try:
        state = load_file(str(path))
        net.load_state_dict(state, strict=True)
    except (OSError, SafetensorError, RuntimeError) as exc:
        raise SpaceError(
            f"checkpoint {path.name}: weights do not fit its structure: {exc}"
        ) from exc
    return net.eval()
