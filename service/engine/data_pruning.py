"""Dataset pruning by success rate (the automatic fine-tuning set pruning in the seeds).

A probe model is fine-tuned for a few early epochs on the whole training set while each
example's correctness is recorded (``search_spaces.success``); an example's success rate is its
fraction of correct epochs. Examples the model gets right in every early epoch teach it little
more, so the candidate subsets keep the examples whose rate is at most a threshold ``t``, one
subset per distinct rate level below 1. They are nested and trade size for accuracy; the
largest, the examples not yet consistently learned, is the "winning ticket" (in the seed about
3x smaller than the full set at no accuracy loss). The levels, hence the subsets and their
sizes, come from the probe's own rates: they adapt to each (model, task) pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

Pick = Literal["winning_ticket", "smallest"]


def derive_subsets(rates: Sequence[float]) -> list[dict[str, Any]]:
    """The candidate subsets, largest first: for each distinct success-rate level ``t`` < 1,
    the examples whose rate is at most ``t`` (``max_rate``), with their size and fraction."""
    r = np.asarray(rates, dtype=float)
    if r.size == 0:
        return []
    out = []
    for level in sorted({float(v) for v in r if v < 1.0}, reverse=True):
        idx = np.flatnonzero(r <= level)
        out.append({"max_rate": round(level, 6), "size": int(idx.size),
                    "fraction": round(idx.size / r.size, 6), "indices": idx.tolist()})
    return out


def pick_subset(subsets: list[dict[str, Any]], *, rule: Pick = "winning_ticket",
                min_examples: int = 1) -> dict[str, Any] | None:
    """The subset to fine-tune on: the largest (``winning_ticket``) or the smallest candidate
    with at least ``min_examples`` examples; None when none has enough (then the full set)."""
    usable = [s for s in subsets if s["size"] >= min_examples]
    if not usable:
        return None
    return max(usable, key=lambda s: s["size"]) if rule == "winning_ticket" else min(
        usable, key=lambda s: s["size"])


def summary(subsets: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    """The subsets without their indices (for listings and the bench)."""
    return [{k: v for k, v in s.items() if k != "indices"} | {"of": total} for s in subsets]
