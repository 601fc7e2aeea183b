"""``StudySpec``: what a user submits. Shape is checked by pydantic; names and options are then
checked against the registries by ``resolve_spec`` (errors name the field and list what exists).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.engine.safe_values import JsonObject, value_problem


class _Strict(BaseModel):
    # finite numbers and storable text only (service.engine.safe_values): NaN or a NUL is a 422
    # here, not a 500 from the database or the JSON encoder
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if problem := value_problem(value):
            raise ValueError(problem)
        return value


class SearchSpaceSpec(_Strict):
    name: str = Field(min_length=1, max_length=100, examples=["table"])
    options: JsonObject = Field(default_factory=dict)


def metric_key(metric: str, device: str | None = None) -> str:
    """Column name of a metric in trial values: ``metric``, or ``metric@device``."""
    return f"{metric}@{device}" if device else metric


class MetricRef(_Strict):
    metric: str = Field(min_length=1, max_length=100, examples=["acc"])
    device: str | None = Field(
        default=None, min_length=1, max_length=100, description="device for device metrics"
    )

    @property
    def key(self) -> str:
        return metric_key(self.metric, self.device)


class ObjectiveSpec(MetricRef):
    direction: Literal["maximize", "minimize"]
    reference: float | None = Field(
        default=None, description="hypervolume reference value (default: from early trials)"
    )


class ConstraintSpec(MetricRef):
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ConstraintSpec:
        if self.max is None and self.min is None:
            raise ValueError("a constraint needs 'max' and/or 'min'")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self

    def violation(self, value: float) -> float:
        """Optuna's convention: <= 0 means satisfied."""
        parts = []
        if self.max is not None:
            parts.append(value - self.max)
        if self.min is not None:
            parts.append(self.min - value)
        return max(parts)


class StrategySpec(_Strict):
    name: str = Field(default="nsga2", min_length=1, max_length=100)
    options: JsonObject = Field(default_factory=dict)


class BudgetSpec(_Strict):
    trials: int = Field(ge=1, description="finished trials (complete or failed) to run")
    seconds: float | None = Field(default=None, gt=0, description="wall-clock limit")


class PruneSpec(_Strict):
    """Fine-tune on a subset of the training set chosen by per-example success rate (see
    ``service.engine.data_pruning``): one probe fine-tuning per study records the rates, every
    candidate then trains on the chosen subset."""

    probe_epochs: int = Field(
        default=2, ge=1, le=100, description="early epochs of the probe fine-tuning whose "
        "per-example correctness gives the success rates")
    pick: Literal["winning_ticket", "smallest"] = Field(
        default="winning_ticket", description="winning_ticket: the largest candidate subset "
        "(examples not correct in every probe epoch); smallest: the smallest one")
    min_examples: int = Field(
        default=8, ge=1, le=10_000_000, description="a subset needs this many examples; "
        "with none that large the candidates train on the full set")
    score_threshold: float = Field(
        default=0.9, gt=0, le=1, description="an image or scene counts as correct when its "
        "pixel (point) accuracy is at least this; a sentence under distillation when its "
        "cosine similarity to the teacher is (classification: the predicted label)")


class FinetuneSpec(_Strict):
    """After the search, fine-tune the front's candidates (FMAS); the front after fine-tuning
    is recomputed over the fine-tuned values only."""

    epochs: int = Field(default=3, ge=1, le=1000, description="training epochs per candidate")
    max_candidates: int | None = Field(
        default=None, ge=1, le=10_000, description="at most this many front trials, in equal "
        "steps along the first objective, both ends included (default: every front trial)"
    )
    budget_seconds: float | None = Field(
        default=None, gt=0, le=10_000_000, description="stop starting candidates once this "
        "many seconds are spent (the probe of `prune` included; the first candidate always "
        "runs); candidates run ends first, then midpoints, so the ones done cover the front "
        "evenly"
    )
    lr: float | None = Field(default=None, gt=0, le=1, description="learning rate")
    prune: PruneSpec | None = Field(
        default=None, description="fine-tune on a training subset pruned by success rate")


class AccuracySpec(_Strict):
    """How accuracy objectives are obtained: measured for every candidate, or screened by a
    predictor so that only candidates that may improve the front are measured."""

    mode: Literal["measured", "surrogate", "hybrid"] = Field(
        default="measured",
        description="measured: every candidate; surrogate: after `initial` measured trials, "
        "only candidates whose optimistic prediction may improve the front (others keep the "
        "prediction); hybrid: surrogate plus a random `audit_fraction` of the others measured",
    )
    predictor: str = Field(default="gp", min_length=1, max_length=100)
    predictor_options: JsonObject = Field(default_factory=dict)
    initial: int = Field(default=10, ge=2, le=100_000, description="measured trials first")
    kappa: float = Field(default=1.0, ge=0, le=10, description="optimism: mean + kappa*std")
    audit_fraction: float = Field(default=0.2, ge=0, le=1, description="hybrid mode only")
    front_includes_predicted: bool = Field(
        default=False, description="let trials with predicted accuracy onto the front"
    )


class ComputeSpec(_Strict):
    """Where training and evaluation run (``paretonas_core/compute.py``); device profilers measure
    on their own devices whatever this says."""

    device: str = Field(
        default="auto", max_length=10,
        description="auto (the worker's device: PARETONAS_DEVICE, else CUDA when torch sees a "
        "GPU, else CPU), cpu, cuda or cuda:N; a CUDA device fails the study on a worker "
        "without one",
    )
    amp: bool = Field(
        default=True, description="mixed precision (autocast) on CUDA; never on the CPU"
    )
    prefetch: int = Field(
        default=0, ge=0, le=64,
        description="training batches prepared ahead by a background thread (fine-tuning)",
    )

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        from paretonas_core.compute import ComputeError, check_device

        try:
            return check_device(value, where="device")
        except ComputeError as exc:
            raise ValueError(str(exc)) from exc


class StudySpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    search_space: SearchSpaceSpec
    objectives: list[ObjectiveSpec] = Field(min_length=2, max_length=4)
    constraints: list[ConstraintSpec] = Field(default_factory=list, max_length=16)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    budget: BudgetSpec
    seed: int = Field(default=0, ge=0, lt=2**32)
    backend: Literal["local", "ray"] = Field(
        default="local", description="where trials run: this worker, or a Ray cluster"
    )
    max_concurrency: int = Field(
        default=1, ge=1, le=1024, description="trials in flight at once (ray backend)"
    )
    stages: int = Field(default=1, ge=1, le=2, description="2: two-stage search (SSS3D)")
    stage1_fraction: float = Field(
        # bench/randlanet.py: 0.05-0.1 beat 0.2-0.5 at 100 and 300 trials (stage 1 evaluates
        # the largest subnet, the slowest; its front needs only some 10-30 trials)
        default=0.1, gt=0, lt=1, description="share of the trial budget spent in stage 1"
    )
    stage1_dims: list[str] | None = Field(
        default=None, max_length=1000,
        description="dimensions searched in stage 1 (default: those whose stage is 1)",
    )
    seed_extremes: bool = Field(
        default=False,
        description="start the search (stage 1 of a two-stage one) with its smallest and its "
        "largest arch (first and last choice of every dimension), so that the front spans the "
        "whole cost range from the start",
    )
    stage2_space: Literal["front_configs", "front_values"] = Field(
        default="front_configs",
        description="what stage 2 may take for the stage-1 dimensions: 'front_configs', one of "
        "stage 1's Pareto-front configurations as a whole; 'front_values', any combination of "
        "the values each dimension takes on that front (a much larger space)",
    )
    finetune: FinetuneSpec | None = Field(
        default=None, description="fine-tune the Pareto candidates after the search"
    )
    accuracy: AccuracySpec = Field(default_factory=AccuracySpec)
    compute: ComputeSpec = Field(default_factory=ComputeSpec)

    @model_validator(mode="after")
    def _distinct_objectives(self) -> StudySpec:
        keys = [o.key for o in self.objectives]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"objectives: {dupes} appear more than once")
        return self

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]
