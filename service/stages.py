"""Two-stage search (SSS3D): stage 1 searches the stage-1 dimensions with every other dimension
at its largest value; stage 2 searches the remaining dimensions, with the stage-1 dimensions
restricted to the values found on stage 1's Pareto front, and its first trials combining each
front configuration with stage-2 values the sampler picks.

A study asks for it with ``"stages": 2``; ``stage1_fraction`` of the trial budget goes to stage 1
and ``stage1_dims`` overrides which dimensions stage 1 searches (default: the dimensions whose
``Dim.stage`` is 1, i.e. the sampling parameters for RandLA-Net). Each stage runs its own Optuna
study over its own distributions; stage 2's holds stage 1's front trials as history (they lie
inside stage 2's distributions: samplers that learn from history, e.g. TPE, start from them) and
enqueues the front's stage-1 configurations (NSGA-II ignores history without its generation tags,
so the enqueued trials are what seeds its first population).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from optuna.distributions import CategoricalDistribution

from search_spaces.base import Dim, SearchSpace
from service.records import TrialRecord
from service.spec import StudySpec
from surrogate.pareto import pareto_mask, to_loss


class StageError(ValueError):
    """A two-stage request the space cannot honour; ``field`` is the spec field at fault."""

    def __init__(self, field: str, msg: str):
        self.field = field
        super().__init__(msg)


class StagePlan:
    """Which stage a trial belongs to, and what each stage's sampler may choose."""

    def __init__(self, spec: StudySpec, space: SearchSpace):
        self.spec = spec
        self.dims: dict[str, Dim] = space.dimensions()
        if spec.stage1_dims is not None:
            unknown = sorted(set(spec.stage1_dims) - set(self.dims))
            if unknown:
                raise StageError("stage1_dims", f"unknown dimension(s) {unknown}; "
                                 f"allowed: {list(self.dims)}")
            first = set(spec.stage1_dims)
        else:
            first = {n for n, d in self.dims.items() if d.stage == 1}
        self.first = [n for n in self.dims if n in first]
        self.later = [n for n in self.dims if n not in first]
        if not self.first or not self.later:
            stages = {n: d.stage for n, d in self.dims.items()}
            raise StageError(
                "stages", f"two stages need dimensions in both stages; search space "
                f"{space.name!r} has stages {stages}: set 'stage1_dims' to choose stage 1's"
            )
        if spec.budget.trials < 2:
            raise StageError("budget", "two stages need a budget of at least 2 trials")
        n1 = int(round(spec.budget.trials * spec.stage1_fraction))
        self.stage1_trials = min(max(n1, 1), spec.budget.trials - 1)

    @classmethod
    def for_spec(cls, spec: StudySpec, space: SearchSpace) -> StagePlan | None:
        return cls(spec, space) if spec.stages == 2 else None

    def stage_of(self, n_finished: int) -> int:
        """The stage of the trial that follows ``n_finished`` finished trials."""
        return 1 if n_finished < self.stage1_trials else 2

    def stage1_front(self, records: Sequence[TrialRecord]) -> list[TrialRecord]:
        """The feasible non-dominated stage-1 trials (one per arch)."""
        seen: set[str] = set()
        candidates = []
        for r in records:
            if r.stage != 1 or r.state != "complete" or r.arch_key in seen:
                continue
            if any(c.violation(r.values[c.key]) > 0 for c in self.spec.constraints):
                continue
            seen.add(r.arch_key)
            candidates.append(r)
        if not candidates:
            return []
        keys = [o.key for o in self.spec.objectives]
        loss = to_loss(np.array([[r.values[k] for k in keys] for r in candidates]),
                       self.spec.directions)
        return [r for r, keep in zip(candidates, pareto_mask(loss), strict=True) if keep]

    def distributions(self, stage: int,
                      records: Sequence[TrialRecord]) -> dict[str, CategoricalDistribution]:
        """Stage 1: its dims free, the others fixed at their largest. Stage 2: its dims free,
        stage-1 dims limited to the values on stage 1's front (all values if it has none)."""
        out: dict[str, CategoricalDistribution] = {}
        front = self.stage1_front(records) if stage == 2 else []
        for name, dim in self.dims.items():
            if stage == 1:
                choices = list(dim.choices) if name in self.first else [dim.largest]
            elif name in self.later or not front:
                choices = list(dim.choices)
            else:
                on_front = {r.arch[name] for r in front}
                choices = [c for c in dim.choices if c in on_front]
            out[name] = CategoricalDistribution(choices)
        return out

    def history(self, stage: int, records: Sequence[TrialRecord]) -> list[TrialRecord]:
        """The trials that the stage's Optuna study is built from (its own, plus stage 1's
        front as seeds for stage 2)."""
        own = [r for r in records if r.stage == stage]
        if stage == 1:
            return own
        return self.stage1_front(records) + own

    def seeds(self, records: Sequence[TrialRecord]) -> list[dict]:
        """Stage-1 values of each stage-1 front arch not yet tried in stage 2: the first stage-2
        trials take them (the sampler picks the stage-2 values), so every front configuration
        is combined with smaller architectures whatever the sampler does with its history."""
        done = sum(r.stage == 2 for r in records)
        return [{n: r.arch[n] for n in self.first} for r in self.stage1_front(records)[done:]]

    def summary(self, records: Sequence[TrialRecord]) -> dict:
        """What is persisted in ``studies.extra["stages"]`` when stage 1 ends."""
        front = self.stage1_front(records)
        dists = self.distributions(2, records)
        return {
            "stage1_dims": self.first,
            "stage2_dims": self.later,
            "stage1_trials": self.stage1_trials,
            "stage1_front": [r.number for r in front],
            "stage2_choices": {n: list(dists[n].choices) for n in self.first},
        }
