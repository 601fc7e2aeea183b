"""Ask a sampler for an arch the space can evaluate, without spending budget on the others.

A table space may not hold a row for every combination of its dimensions (NAS-Bench-Graph:
26,206 rows of 59,049 combinations). Optuna's samplers draw from the full grid, so without this
a study spent 25-60% of its trials on archs that fail for want of a row, while the surrogate
strategy (which knows the rows) spent none: unequal searches. ``ask_valid`` re-asks instead:
each invalid proposal is told to the study as FAIL (so the sampler moves on; Optuna's samplers
ignore failed trials, the surrogate never re-proposes a known arch) and is not a trial of the
study, so ``budget.trials`` counts evaluations for every strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from search_spaces.base import Arch

#: Proposals tried for one trial before giving up. Random sampling of NAS-Bench-Graph finds a
#: row 44% of the time; 1000 misses in a row mean the sampler cannot find the space's rows.
MAX_INVALID_ASKS = 1000


class NoValidArch(RuntimeError):
    """The sampler proposed only archs the space cannot evaluate, ``max_asks`` times running."""


def ask_valid(
    study: optuna.Study,
    distributions: Mapping[str, Any],
    to_arch: Callable[[dict[str, Any]], Arch],
    is_valid: Callable[[Arch], bool],
    *,
    max_asks: int = MAX_INVALID_ASKS,
) -> tuple[optuna.Trial, Arch, int]:
    """The next trial whose arch ``is_valid``, its arch and how many invalid proposals were
    skipped on the way (each told FAIL to ``study``, none returned)."""
    for skipped in range(max_asks):
        trial = study.ask(dict(distributions))
        arch = to_arch(trial.params)
        if is_valid(arch):
            return trial, arch, skipped
        study.tell(trial, state=TrialState.FAIL)
    raise NoValidArch(
        f"the sampler proposed {max_asks} archs in a row that the search space cannot evaluate "
        "(no row of the table for them); use a strategy that knows the space's archs "
        "('surrogate') or a table that covers every combination of its dimensions")
