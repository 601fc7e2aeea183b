"""Which subnets a supernet training step trains: the sandwich rule, Once-for-All's progressive
shrinking, or only the largest network (a plain model, FMAS's "pretrained" starting point).

Progressive shrinking (Cai et al., Once-for-All, 2020) first trains the largest network, then
makes one group of dimensions elastic at a time, keeping the groups not yet elastic at their
largest value, so that small subnets are fitted to weights the large ones have already shaped
instead of all competing from random initialisation. This space has no elastic kernel size
(MobileNetV2's depthwise convolutions are 3x3), so the phases are depth (with input
resolution), then expand ratio, then the head's widths and ASPP branches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search_spaces.base import Arch, SearchSpace, SpaceError

SCHEDULES = ("sandwich", "progressive", "largest")
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


def phase_epochs(epochs: int, given: Sequence[int] | None) -> list[int]:
    """Epochs of each progressive phase: ``given`` (checked to sum to ``epochs``), else an even
    split with the remainder going to the last (all-elastic) phase."""
    n = len(PHASE_GROUPS)
    if given is not None:
        given = [int(e) for e in given]
        if len(given) != n or any(e < 0 for e in given) or sum(given) != epochs:
            raise SpaceError(f"phase_epochs must be {n} non-negative integers summing to the "
                             f"epochs ({epochs}), got {given}")
        return given
    base = epochs // n
    return [base] * (n - 1) + [epochs - base * (n - 1)]


def phase_of(epoch: int, epochs_per_phase: Sequence[int]) -> int:
    """Index of the phase ``epoch`` (0-based) falls in."""
    end = 0
    for i, e in enumerate(epochs_per_phase):
        end += e
        if epoch < end:
            return i
    return len(epochs_per_phase) - 1


def _restrict(space: SearchSpace, arch: Arch, elastic: set[str]) -> Arch:
    """``arch`` with every dimension outside the ``elastic`` groups set to its largest value."""
    dims = space.dimensions()
    return Arch({name: (value if dim_group(name) in elastic else dims[name].largest)
                 for name, value in arch.items()})


def step_archs(space: SearchSpace, rng: np.random.Generator, *, schedule: str, phase: int,
               num_random: int) -> list[Arch]:
    """The subnets of one training step, the largest first (the distillation teacher).

    ``sandwich``: largest, smallest and ``num_random`` random subnets of the whole space.
    ``progressive``: the same within the phase's elastic groups (phase 0: the largest only).
    ``largest``: the largest network only (plain training)."""
    if schedule not in SCHEDULES:
        raise SpaceError(f"schedule {schedule!r} unknown; allowed: {', '.join(SCHEDULES)}")
    largest = space.largest()
    if schedule == "largest" or (schedule == "progressive" and phase == 0):
        return [largest]
    randoms = [space.sample(rng) for _ in range(num_random)]
    smallest = space.smallest()
    if schedule == "progressive":
        elastic = set(PHASE_GROUPS[phase])
        smallest = _restrict(space, smallest, elastic)
        randoms = [_restrict(space, a, elastic) for a in randoms]
    return [largest, smallest, *randoms]
