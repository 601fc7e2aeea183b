"""Two-stage search (SSS3D): stage 1 searches the stage-1 dimensions with every other dimension
at its largest value; stage 2 searches the remaining dimensions combined with the configurations
stage 1 found on its Pareto front, its first trials taking each front configuration in turn.

A study asks for it with ``"stages": 2``; ``stage1_fraction`` of the trial budget goes to stage 1
and ``stage1_dims`` overrides which dimensions stage 1 searches (default: the dimensions whose
``Dim.stage`` is 1, i.e. the sampling parameters for RandLA-Net).

Why whole configurations (``stage2_space: front_configs``, the default): the front is a handful
of configurations, but the values its dimensions take cover most of each dimension's choices, so
limiting each dimension separately (``front_values``) leaves stage 2 almost the whole space (on
the RandLA-Net bench: 14 front configurations, yet 972 of the 2,187 per-dimension combinations).
In ``front_configs`` the stage-1 dimensions reach stage 2's sampler as one categorical parameter,
``stage1_config``, whose choices index the front configurations; ``StageView`` maps between that
and whole archs, and ``GroupedSpace`` is that stage's search space for strategies that model
archs (the surrogate): restricting the search is the runner's job, not the strategy's.

Each stage runs its own Optuna study over its own distributions; stage 2's holds stage 1's front
trials as history (they lie inside stage 2's space: samplers that learn from history, e.g. TPE,
start from them) and enqueues the front's configurations (NSGA-II ignores history without its
generation tags, so the enqueued trials are what seeds its first population).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from optuna.distributions import CategoricalDistribution

from search_spaces.base import Arch, Dim, SearchSpace
from service.engine.front import nondominated, on_front_candidate
from service.engine.records import TrialRecord
from service.engine.spec import StudySpec

#: stage 2's parameter standing for all stage-1 dimensions: the index of a front configuration
STAGE1_CONFIG = "stage1_config"


@dataclass(frozen=True)
class StageView:
    """What a stage's sampler searches: its distributions, and (stage 2 in ``front_configs``)
    the ``group`` of dimensions that ``STAGE1_CONFIG`` replaces with the values of each choice.
    With no group, sampler parameters are the arch itself."""

    param: ClassVar[str] = STAGE1_CONFIG
    stage: int
    distributions: dict[str, CategoricalDistribution]
    group: tuple[str, ...] = ()
    configs: tuple[tuple[Any, ...], ...] = field(default=())

    def arch_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Sampler parameters -> the arch's values."""
        out = {k: v for k, v in params.items() if k != STAGE1_CONFIG}
        if STAGE1_CONFIG in params:
            out.update(zip(self.group, self.configs[params[STAGE1_CONFIG]], strict=True))
        return out

    def sampler_params(self, arch: Mapping[str, Any]) -> dict[str, Any] | None:
        """The arch's values -> sampler parameters; None when the arch is outside this stage's
        space (its stage-1 values are not one of the front configurations)."""
        if not self.group:
            return dict(arch)
        config = tuple(arch[n] for n in self.group)
        if config not in self.configs:
            return None
        out = {k: v for k, v in arch.items() if k not in self.group}
        out[STAGE1_CONFIG] = self.configs.index(config)
        return out


    def search_space(self, space: SearchSpace) -> SearchSpace | GroupedSpace:
        """The space a strategy searches in this stage: ``space``, or with a group the
        ``GroupedSpace`` whose parameters are this view's sampler parameters."""
        return GroupedSpace(space, self) if self.group else space


class GroupedSpace:
    """A stage's search space with its group of dimensions as one dimension, ``STAGE1_CONFIG``
    (the index of a front configuration), the others as in ``space``. Encodings and a table's
    rows are those of the whole archs, so a strategy that models archs searches it as any
    space (what ``surrogate.candidates.ArchSpace`` reads)."""

    def __init__(self, space: SearchSpace, view: StageView):
        self.space, self.view = space, view
        dims = space.dimensions()
        self._dims = {
            n: Dim(tuple(d.choices), ordinal=n in dims and dims[n].ordinal)
            for n, d in view.distributions.items()
        }

    def dimensions(self) -> dict[str, Dim]:
        return dict(self._dims)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        return self.space.encode(Arch(self.view.arch_params(params)))

    def enumerate_archs(self) -> list[Arch] | None:
        rows = self.space.enumerate_archs()
        if rows is None:
            return None
        return [Arch(p) for a in rows if (p := self.view.sampler_params(a)) is not None]


def single_stage_view(space: SearchSpace) -> StageView:
    return StageView(1, {n: CategoricalDistribution(list(d.choices))
                         for n, d in space.dimensions().items()})


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
        return nondominated([r for r in records
                             if r.stage == 1 and on_front_candidate(r, self.spec)], self.spec)

    def front_configs(self, records: Sequence[TrialRecord]) -> list[tuple[Any, ...]]:
        """The stage-1 values of each stage-1 front arch, in front order, without repeats."""
        configs: list[tuple[Any, ...]] = []
        for r in self.stage1_front(records):
            config = tuple(r.arch[n] for n in self.first)
            if config not in configs:
                configs.append(config)
        return configs

    def view(self, stage: int, records: Sequence[TrialRecord]) -> StageView:
        """Stage 1: its dims free, the others fixed at their largest. Stage 2: its dims free,
        the stage-1 dims one of the front's configurations (``front_configs``) or limited to the
        values on the front (``front_values``); all values when stage 1 has no front."""
        configs = self.front_configs(records) if stage == 2 else []
        joint = bool(configs) and self.spec.stage2_space == "front_configs"
        out: dict[str, CategoricalDistribution] = {}
        for name, dim in self.dims.items():
            if stage == 1:
                choices = list(dim.choices) if name in self.first else [dim.largest]
            elif name in self.later or not configs:
                choices = list(dim.choices)
            elif joint:
                continue
            else:
                on_front = {c[self.first.index(name)] for c in configs}
                choices = [c for c in dim.choices if c in on_front]
            out[name] = CategoricalDistribution(choices)
        if not joint:
            return StageView(stage, out)
        out[STAGE1_CONFIG] = CategoricalDistribution(list(range(len(configs))))
        return StageView(stage, out, tuple(self.first), tuple(configs))

    def history(self, stage: int, records: Sequence[TrialRecord]) -> list[TrialRecord]:
        """The trials that the stage's Optuna study is built from (its own, plus stage 1's
        front as seeds for stage 2)."""
        own = [r for r in records if r.stage == stage]
        if stage == 1:
            return own
        return self.stage1_front(records) + own

    def seeds(self, view: StageView, records: Sequence[TrialRecord]) -> list[dict[str, Any]]:
        """Sampler parameters fixing each stage-1 front configuration not yet tried in stage 2:
        the first stage-2 trials take them (the sampler picks the stage-2 values), so every
        front configuration is combined with smaller architectures whatever the sampler does."""
        done = sum(r.stage == 2 for r in records)
        configs = self.front_configs(records)
        if view.group:
            return [{STAGE1_CONFIG: i} for i in range(done, len(configs))]
        return [dict(zip(self.first, c, strict=True)) for c in configs[done:]]

    def summary(self, records: Sequence[TrialRecord]) -> dict:
        """What is persisted in ``studies.extra["stages"]`` when stage 1 ends."""
        front = self.stage1_front(records)
        configs = self.front_configs(records)
        return {
            "stage1_dims": self.first,
            "stage2_dims": self.later,
            "stage1_trials": self.stage1_trials,
            "stage1_front": [r.number for r in front],
            "stage2_space": self.spec.stage2_space,
            "stage1_configs": [dict(zip(self.first, c, strict=True)) for c in configs],
            "stage2_choices": {n: [v for v in self.dims[n].choices
                                   if any(c[i] == v for c in configs) or not configs]
                               for i, n in enumerate(self.first)},
        }
