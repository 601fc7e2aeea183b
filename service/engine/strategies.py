"""Search strategies: each builds an Optuna sampler from validated options, and reports what
its sampler knows about a proposal and about its own model.

The runner asks and tells an Optuna study through Optuna's public API only, so any sampler
(Optuna's, our surrogate strategy) plugs in here. The runner gives a strategy the space to search
(restricted by the runner for a two-stage study's stages); the strategy proposes within the
distributions it is asked with. ``tests/contracts/strategy.py`` is the contract every built-in
strategy meets.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, field_validator

from paretonas_core.registry import Registry


class StrategyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Strategy:
    name: ClassVar[str]
    doc: ClassVar[str] = ""
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, options: dict[str, Any] | StrategyOptions | None = None):
        if not isinstance(options, StrategyOptions):
            options = self.Options.model_validate(dict(options or {}))
        self.options = options

    #: whether the sampler never proposes an arch already measured, failed or pending (Optuna's
    #: samplers may; the runner then reuses the first trial's values)
    unique_proposals: ClassVar[bool] = False

    def make_sampler(self, *, seed: int, context: dict[str, Any]) -> optuna.samplers.BaseSampler:
        """Build the sampler. ``context``: ``space`` (what to search: dimensions, encode,
        enumerate_archs) and ``objectives``. Constraints reach it through Optuna's per-trial
        constraint values (``Trial.set_constraint``), which every constraint-aware Optuna
        sampler reads."""
        raise NotImplementedError

    def explain(self, sampler: optuna.samplers.BaseSampler, number: int) -> dict[str, Any] | None:
        """Why trial ``number`` was proposed and what the strategy predicted for it (JSON-able,
        stored in the trial's ``info["strategy"]``); None when the strategy has nothing to say.
        Called once per trial, after it was asked."""
        return None

    def model_quality(self, sampler: optuna.samplers.BaseSampler) -> dict[str, Any] | None:
        """How good the strategy's model is (per objective, e.g. held-out Kendall tau and
        RMSE); None or {} for a strategy without a model."""
        return None


class OptunaStrategy(Strategy):
    """An Optuna sampler whose options are its keyword arguments, passed as they are."""

    sampler_cls: ClassVar[type[optuna.samplers.BaseSampler]]
    fixed: ClassVar[dict[str, Any]] = {}  # keyword arguments users do not set

    def make_sampler(self, *, seed, context):
        return self.sampler_cls(seed=seed, **self.options.model_dump(), **self.fixed)


class RandomStrategy(OptunaStrategy):
    name = "random"
    doc = "uniform random sampling (Optuna RandomSampler)"
    sampler_cls = optuna.samplers.RandomSampler


class NSGA2Options(StrategyOptions):
    population_size: int = Field(default=20, ge=2, le=10_000)
    mutation_prob: float | None = Field(default=None, ge=0, le=1)
    crossover_prob: float = Field(default=0.9, ge=0, le=1)


class NSGA2Strategy(OptunaStrategy):
    name = "nsga2"
    doc = "NSGA-II genetic algorithm (Optuna NSGAIISampler), constraint-aware"
    Options = NSGA2Options
    sampler_cls = optuna.samplers.NSGAIISampler


class NSGA3Options(NSGA2Options):
    dividing_parameter: int = Field(default=3, ge=1, le=100)


class NSGA3Strategy(OptunaStrategy):
    name = "nsga3"
    doc = "NSGA-III with reference directions (Optuna NSGAIIISampler), for 3-4 objectives"
    Options = NSGA3Options
    sampler_cls = optuna.samplers.NSGAIIISampler


class TPEOptions(StrategyOptions):
    n_startup_trials: int = Field(default=10, ge=1, le=10_000)
    multivariate: bool = True
    n_ei_candidates: int = Field(default=24, ge=1, le=10_000)


class TPEStrategy(OptunaStrategy):
    name = "tpe"
    doc = "multi-objective TPE (Optuna TPESampler), constraint-aware"
    Options = TPEOptions
    sampler_cls = optuna.samplers.TPESampler


class GPOptions(StrategyOptions):
    n_startup_trials: int = Field(default=10, ge=1, le=10_000, description="random archs first")
    deterministic_objective: bool = Field(
        default=False, description="fix the GP's noise at its minimum (noise-free objectives)")


class GPStrategy(OptunaStrategy):
    name = "gp"
    doc = ("Gaussian-process Bayesian optimisation (Optuna GPSampler: log-EHVI for several "
           "objectives), constraint-aware")
    Options = GPOptions
    sampler_cls = optuna.samplers.GPSampler
    fixed = {"warn_independent_sampling": False}


class SurrogateOptions(StrategyOptions):
    predictor: str = Field(default="gp", description="a predictor name (PREDICTORS)")
    predictor_options: dict[str, Any] = Field(default_factory=dict)
    n_initial: int = Field(default=10, ge=2, le=10_000, description="random archs first")
    batch_size: int = Field(default=5, ge=1, le=1000, description="archs chosen per refit")
    kappa: float = Field(default=1.0, ge=0, le=10, description="optimism: mean - kappa*std")
    n_random: int = Field(default=500, ge=0, le=100_000, description="random candidates/round")
    n_parents: int = Field(
        default=10, ge=1, le=1000, description="archs mutated per generation: the measured "
        "archs closest to the front, then the best-scoring candidates")
    generations: int = Field(default=2, ge=0, le=50, description="mutation rounds on predictions")
    reference: Literal["median", "nadir", "front"] = Field(
        default="front", description="hypervolume reference of the batch selection: the "
        "median measured arch per objective (median), the worst measured values + 10% of their "
        "range (nadir), or the measured front's nadir + 10% of its range, far-out archs "
        "excluded (front)")
    hv_units: Literal["model", "objective"] = Field(
        default="model", description="hypervolume of the batch selection on the predictors' "
        "scale (log for wide-ranging costs) or in the objectives' own units")
    spread: bool = Field(
        default=False, description="each pick of a batch near a different part of the "
        "measured front (after the first, best, pick)")
    extremes: bool = Field(
        default=False, description="each batch's first pick extends the front's range on one "
        "objective (cycling), when a candidate is predicted to")
    warp: Literal["rank", "none"] = Field(
        default="rank", description="targets the predictors fit: normal scores of their ranks "
        "(rank: a Gaussian copula, robust to far-out archs such as chance-level accuracy), or "
        "the values as measured (none)")

    initial_design: Literal["random", "covering"] = Field(
        default="random", description="the first n_initial archs: uniform random, or covering "
        "(each pick shows the most choices not yet seen, then is farthest from the others)")
    early_batch: int = Field(
        default=0, ge=0, le=10_000, description="one arch per refit until this many are "
        "measured, then batch_size")
    min_feasibility: float = Field(
        default=0.5, ge=0, le=1, description="constrained studies: a candidate predicted "
        "feasible with a lower probability is picked only when no candidate reaches it")
    opening: Literal["own", "gp"] = Field(
        default="gp", description="who proposes until opening_trials archs are measured: the "
        "surrogate's own batches (own), or Optuna's GPSampler (gp: log-EHVI refitted every "
        "trial), repaired to the nearest unseen evaluable arch (default since issue #17: "
        "stronger early and late on the dev problems, surrogate/RESULTS.md)")
    opening_trials: int = Field(
        default=50, ge=0, le=10_000, description="with opening gp: measured archs before the "
        "surrogate's batches take over")

    @field_validator("predictor")
    @classmethod
    def _known_predictor(cls, name: str) -> str:
        from surrogate import PREDICTORS

        if name not in PREDICTORS:
            allowed = ", ".join(PREDICTORS.names())
            raise ValueError(f"unknown predictor {name!r}; allowed: {allowed}")
        return name


class SurrogateStrategy(Strategy):
    name = "surrogate"
    doc = ("surrogate-assisted: predictors fitted on measured trials pick each batch by "
           "optimistic hypervolume improvement (surrogate.sampler)")
    Options = SurrogateOptions
    unique_proposals = True

    def explain(self, sampler, number):
        return sampler.explain(number)

    def model_quality(self, sampler):
        return sampler.quality()

    def make_sampler(self, *, seed, context):
        from surrogate.sampler import SurrogateSampler

        o = self.options
        objectives = [getattr(obj, "key", obj) for obj in context.get("objectives", [])]
        return SurrogateSampler(
            context["space"], predictor=o.predictor, predictor_options=o.predictor_options,
            n_initial=o.n_initial, batch_size=o.batch_size, kappa=o.kappa, n_random=o.n_random,
            n_parents=o.n_parents, generations=o.generations, reference=o.reference,
            hv_units=o.hv_units, spread=o.spread, extremes=o.extremes, warp=o.warp,
            initial_design=o.initial_design, early_batch=o.early_batch,
            min_feasibility=o.min_feasibility, opening=o.opening,
            opening_trials=o.opening_trials, objective_names=objectives, seed=seed,
        )


STRATEGIES: Registry[Strategy] = Registry("strategy", "paretonas.strategies")
for _cls in (RandomStrategy, NSGA2Strategy, NSGA3Strategy, TPEStrategy, GPStrategy,
             SurrogateStrategy):
    STRATEGIES.register(_cls.name, _cls)
