"""Which subnets a weight-sharing supernet trains at each step, for any space: the sandwich rule,
Once-for-All's progressive shrinking, or only the largest network; and in-place distillation's
loss. Each space names its own dimension groups and phases (``Phases``).

Progressive shrinking (Cai et al., Once-for-All, 2020) first trains the largest network, then
makes one group of dimensions elastic at a time, keeping the groups not yet elastic at their
largest value, so that small subnets are fitted to weights the large ones have already shaped
instead of all competing from random initialisation. In-place distillation (Yu et al., BigNAS /
slimmable networks) trains every smaller subnet of a step towards the largest one's predictions
as well as the labels: a soft target that is consistent across subnets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from search_spaces.base import Arch, ArchError, SearchSpace, SpaceError

SCHEDULES = ("sandwich", "progressive", "largest")


@dataclass(frozen=True)
class Phases:
    """A space's progressive-shrinking plan: ``groups[p]`` are the dimension groups elastic in
    phase ``p`` (cumulative; phase 0 trains the largest network only, so ``groups[0]`` is
    empty), ``group_of`` maps a dimension name to its group."""

    groups: tuple[tuple[str, ...], ...]
    group_of: Callable[[str], str]

    def __post_init__(self) -> None:
        if not self.groups or self.groups[0]:
            raise ValueError("phase 0 must have no elastic group (the largest network alone)")


def split_phases(total: int, given: Sequence[int] | None, n: int, *, unit: str = "epochs"
                 ) -> list[int]:
    """Length (epochs or steps) of each of ``n`` phases: ``given`` (checked to sum to
    ``total``), else an even split with the remainder going to the last (all-elastic) phase."""
    if given is not None:
        given = [int(e) for e in given]
        if len(given) != n or any(e < 0 for e in given) or sum(given) != total:
            raise SpaceError(f"phase_{unit} must be {n} non-negative integers summing to the "
                             f"{unit} ({total}), got {given}")
        return given
    base = total // n
    return [base] * (n - 1) + [total - base * (n - 1)]


def phase_of(index: int, per_phase: Sequence[int]) -> int:
    """Index of the phase that epoch (or step) ``index`` (0-based) falls in."""
    end = 0
    for i, length in enumerate(per_phase):
        end += length
        if index < end:
            return i
    return len(per_phase) - 1


def restrict(space: SearchSpace, arch: Arch, elastic: set[str],
             group_of: Callable[[str], str]) -> Arch:
    """``arch`` with every dimension outside the ``elastic`` groups set to its largest value."""
    dims = space.dimensions()
    return Arch({name: (value if group_of(name) in elastic else dims[name].largest)
                 for name, value in arch.items()})


def _feasible(space: SearchSpace, arch: Arch) -> bool:
    try:
        space.validate(arch)
    except ArchError:
        return False
    return True


def step_archs(space: SearchSpace, rng: np.random.Generator, *, schedule: str, phase: int,
               num_random: int, phases: Phases) -> list[Arch]:
    """The subnets of one training step, the largest first (the distillation teacher).

    ``sandwich``: largest, smallest and ``num_random`` random subnets of the whole space.
    ``progressive``: the same within the phase's elastic groups (phase 0: the largest only).
    ``largest``: the largest network only (plain training). A restricted random subnet the
    space cannot run (RandLA-Net: more neighbours than points left) is drawn again, a bounded
    number of times."""
    if schedule not in SCHEDULES:
        raise SpaceError(f"schedule {schedule!r} unknown; allowed: {', '.join(SCHEDULES)}")
    largest = space.largest()
    if schedule == "largest" or (schedule == "progressive" and phase == 0):
        return [largest]
    if schedule == "progressive":
        elastic = set(phases.groups[min(phase, len(phases.groups) - 1)])

        def shrink(arch: Arch) -> Arch:
            return restrict(space, arch, elastic, phases.group_of)
    else:
        def shrink(arch: Arch) -> Arch:
            return arch
    randoms: list[Arch] = []
    for _ in range(100 * (num_random + 1)):
        if len(randoms) == num_random:
            break
        arch = shrink(space.sample(rng))
        if _feasible(space, arch):
            randoms.append(arch)
    return [largest, shrink(space.smallest()), *randoms]


def distill_loss(logits: torch.Tensor, teacher: torch.Tensor, *, dim: int,
                 keep: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of ``logits`` against the teacher's probabilities along the class
    dimension ``dim``, averaged over the positions where ``keep`` (1/0, broadcastable, class
    dimension of size 1) is set (all positions without it)."""
    per_position = -(teacher * F.log_softmax(logits, dim=dim)).sum(dim=dim, keepdim=True)
    if keep is None:
        return per_position.mean()
    return (per_position * keep).sum() / keep.sum().clamp(min=1.0)
