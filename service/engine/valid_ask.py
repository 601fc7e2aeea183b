"""Ask a sampler for an arch the space can evaluate, without spending budget on the others.

A table space may not hold a row for every combination of its dimensions (NAS-Bench-Graph:
26,206 rows of 59,049 combinations). Optuna's samplers draw from the full grid, so without this
a study spent 25-60% of its trials on archs that fail for want of a row, while the surrogate
strategy (which knows the rows) spent none: unequal searches. ``ask_valid`` re-asks instead:
each invalid proposal is told to the study as FAIL and is not a trial of the study, so
``budget.trials`` counts evaluations for every strategy.

Optuna's samplers ignore failed trials, so a sampler that has settled on a region without rows
proposes it again and again (multivariate TPE on NAS-Bench-Graph photo: 1000 invalid proposals
in a row). After ``repair_after`` invalid proposals in a row the next trial is therefore the
valid arch nearest the last proposal (fewest differing dimensions, ties at random; a repair, as
genetic algorithms repair infeasible offspring), enqueued so the sampler sees it as its own.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import optuna
from optuna.trial import TrialState

from search_spaces.base import Arch, SearchSpace

#: Proposals tried for one trial before giving up (spaces that cannot list their archs, so
#: cannot repair).
MAX_INVALID_ASKS = 1000
#: Invalid proposals in a row before the nearest valid arch is taken instead.
REPAIR_AFTER = 20


class View(Protocol):
    """What the sampler searches (``service.engine.stages.StageView``)."""

    distributions: dict[str, Any]

    def arch_params(self, params: dict[str, Any]) -> dict[str, Any]: ...

    def sampler_params(self, arch: Any) -> dict[str, Any] | None: ...


class NoValidArch(RuntimeError):
    """Neither the sampler nor a repair found an arch the space can evaluate."""


def ask_valid(
    study: optuna.Study,
    view: View,
    space: SearchSpace,
    *,
    repair_after: int = REPAIR_AFTER,
    max_asks: int = MAX_INVALID_ASKS,
    seed: int = 0,
) -> tuple[optuna.Trial, Arch, int]:
    """The next trial whose arch ``space.is_valid``, its arch and how many invalid proposals
    were skipped on the way (each told FAIL to ``study``, none returned)."""
    rng = np.random.default_rng(seed + len(study.get_trials(deepcopy=False)))
    for skipped in range(max_asks):
        trial = study.ask(dict(view.distributions))
        arch = Arch(view.arch_params(trial.params))
        if space.is_valid(arch):
            return trial, arch, skipped
        study.tell(trial, state=TrialState.FAIL)
        if skipped + 1 >= repair_after and (params := nearest_valid(space, view, arch, rng)):
            study.enqueue_trial(params)
    raise NoValidArch(
        f"the sampler proposed {max_asks} archs in a row that the search space cannot evaluate "
        "(no row of the table for them); use a strategy that knows the space's archs "
        "('surrogate') or a table that covers every combination of its dimensions")


def nearest_valid(
    space: SearchSpace, view: View, arch: Arch, rng: np.random.Generator
) -> dict[str, Any] | None:
    """Sampler parameters of the evaluable arch with the fewest dimensions differing from
    ``arch`` among those the view allows; None when the space cannot list its archs."""
    listed = space.enumerate_archs()
    if not listed:
        return None
    dists = view.distributions
    names = list(arch)
    candidates = []
    for other in listed:
        params = view.sampler_params(other)
        if params is not None and all(
            params[n] in getattr(d, "choices", (params[n],)) for n, d in dists.items()
        ):
            candidates.append((other, params))
    if not candidates:
        return None
    differing = np.array([sum(other[n] != arch[n] for n in names) for other, _ in candidates])
    nearest = np.flatnonzero(differing == differing.min())
    return candidates[int(rng.choice(nearest))][1]
