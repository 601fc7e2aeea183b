"""DeepLabV3+'s progressive-shrinking phases (the schedules themselves are shared:
``search_spaces/shrinking.py``). This space has no elastic kernel size (MobileNetV2's depthwise
convolutions are 3x3), so after the largest network alone the phases open depth (with input
resolution), then expand ratio, then the head's widths and ASPP branches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search_spaces import shrinking
from search_spaces.base import Arch, SearchSpace
from search_spaces.shrinking import SCHEDULES, phase_of

__all__ = ["PHASES", "PHASE_GROUPS", "SCHEDULES", "dim_group", "phase_epochs", "phase_of",
           "step_archs"]

#: Dimension groups made elastic by each progressive phase (cumulative), after the first phase
#: that trains only the largest network.
PHASE_GROUPS: tuple[tuple[str, ...], ...] = (
    (),
    ("depth", "resolution"),
    ("depth", "resolution", "expand"),
    ("depth", "resolution", "expand", "width"),
)


def dim_group(name: str) -> str:
    """The progressive-shrinking group of a DeepLabV3+ dimension."""
    if name.endswith("_depth"):
        return "depth"
    if name == "resolution":
        return "resolution"
    if name.endswith("_expand"):
        return "expand"
    return "width"  # aspp_rate*, aspp/low-level/decoder channels


PHASES = shrinking.Phases(PHASE_GROUPS, dim_group)


def phase_epochs(epochs: int, given: Sequence[int] | None) -> list[int]:
    """Epochs of each progressive phase (``shrinking.split_phases``)."""
    return shrinking.split_phases(epochs, given, len(PHASE_GROUPS))


def step_archs(space: SearchSpace, rng: np.random.Generator, *, schedule: str, phase: int,
               num_random: int) -> list[Arch]:
    """The subnets of one DeepLabV3+ training step (``shrinking.step_archs``)."""
    return shrinking.step_archs(space, rng, schedule=schedule, phase=phase,
                                num_random=num_random, phases=PHASES)
