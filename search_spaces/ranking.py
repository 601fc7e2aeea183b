"""How well each supernet space's inherited-weight accuracy ranks subnets the way training does:
the figures ``bench/weight_sharing.py --full`` measured, kept in ``data/weight_sharing.json``,
and the warning a study on a poorly ranking space should carry.

The figures belong to the bench-scale supernets and recipes named in the file, not to every
checkpoint a user may load; the warning says so.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Below this Kendall tau (inherited vs stand-alone), a front ranked by inherited accuracy is
#: not trusted without fine-tuning (the issue's target for the bench supernets is 0.6).
POOR_TAU = 0.6
FIGURES = Path(__file__).parent / "data" / "weight_sharing.json"


@lru_cache(maxsize=1)
def _figures() -> dict[str, Any]:
    return json.loads(FIGURES.read_text()) if FIGURES.exists() else {}


def rank_correlation(space: str) -> dict[str, Any] | None:
    """The measured figures of ``space`` (``None`` when none were measured): Kendall tau of the
    inherited metric vs the stand-alone one, with and without BN recalibration where that
    applies, the share of trained accuracy, what they were measured on and the command."""
    entry = _figures().get(space)
    return dict(entry) if entry else None


def _tau_of(entry: dict[str, Any], recalibrated: bool) -> float | None:
    if recalibrated and entry.get("kendall_tau_recalibrated") is not None:
        return float(entry["kendall_tau_recalibrated"])
    value = entry.get("kendall_tau")
    return None if value is None else float(value)


def _tau_for(entry: dict[str, Any], options: dict[str, Any]) -> float | None:
    """The tau of the study's way of scoring (BN-recalibrated when its options enable it): the
    lower of the subnets the recipe was chosen on and a fresh draw (``out_of_sample``), since
    a figure that only holds on the subnets it was chosen on is not one to trust."""
    recalibrated = bool(options.get("bn_recalibration_batches") or options.get("calibrate_bn"))
    taus = [t for t in (_tau_of(entry, recalibrated),
                        _tau_of(entry.get("out_of_sample") or {}, recalibrated)) if t is not None]
    return min(taus) if taus else None


def ranking_warning(space: str, options: dict[str, Any] | None = None) -> str | None:
    """The text of a study warning when ``space``'s inherited ranking is known to be poor
    (measured Kendall tau below ``POOR_TAU``), else ``None``."""
    entry = rank_correlation(space)
    if entry is None:
        return None
    tau = _tau_for(entry, options or {})
    if tau is None or tau >= POOR_TAU:
        return None
    return (
        f"{space}: subnets' inherited-weight {entry.get('metric', 'accuracy')} ranked them "
        f"against {entry.get('versus', 'trained subnets')} with Kendall tau {tau:.2f} (below "
        f"{POOR_TAU}) on the bench-scale supernet ({entry.get('recipe', 'see the README')}; "
        f"`{entry.get('command', 'python bench/weight_sharing.py --full')}`): the front's "
        "accuracy ranking may not hold after training; fine-tune the front before trusting it"
    )
