"""Check a ``StudySpec`` against the registries and bind it to live objects.

Every problem is a ``SpecError`` carrying the JSON location of the field and a message that
lists what is allowed; the API turns it into a 422 of FastAPI's usual shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from evaluators.profilers import PROFILERS
from evaluators.profilers.devices import DeviceCatalog
from paretonas_core.registry import UnknownNameError
from search_spaces import SPACES
from search_spaces.base import MetricInfo, SearchSpace, SpaceError
from service.engine.spec import MetricRef, StudySpec
from service.engine.stages import StageError, StagePlan
from service.engine.strategies import STRATEGIES, Strategy


class SpecError(ValueError):
    """One or more invalid fields; ``errors`` are FastAPI-style dicts (loc, msg, type)."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))

    @classmethod
    def at(cls, loc: tuple, msg: str) -> SpecError:
        return cls([{"loc": list(loc), "msg": msg, "type": "value_error"}])

    @classmethod
    def from_validation(cls, loc: tuple, exc: ValidationError,
                        allowed: list[str] | None = None) -> SpecError:
        """Pydantic's errors under ``loc``; an unknown option (``extra_forbidden``) lists the
        ``allowed`` ones instead of pydantic's bare "Extra inputs are not permitted"."""
        errors = []
        for e in exc.errors(include_url=False, include_context=False, include_input=False):
            msg = e["msg"]
            if e["type"] == "extra_forbidden" and allowed is not None and e["loc"]:
                msg = (f"unknown option {e['loc'][-1]!r}; allowed: "
                       f"{', '.join(allowed) or '(none)'}")
            errors.append({"loc": [*loc, *e["loc"]], "msg": msg, "type": e["type"]})
        return cls(errors)


def _fields(model: Any) -> list[str] | None:
    """The option names of a pydantic options model (for "unknown option" messages)."""
    fields = getattr(model, "model_fields", None)
    return sorted(fields) if isinstance(fields, dict) else None


@dataclass(frozen=True)
class MetricSource:
    """Where a metric comes from: the space's evaluator, its cost model, or a device."""

    ref: MetricRef
    kind: Literal["accuracy", "cost", "device"]
    unit: str = ""


@dataclass
class ResolvedStudy:
    spec: StudySpec
    space: SearchSpace
    strategy: Strategy
    sources: dict[str, MetricSource]  # by metric key, objectives first, then constraints
    devices: DeviceCatalog

    @property
    def objective_keys(self) -> list[str]:
        return [o.key for o in self.spec.objectives]

def measured_devices(study: ResolvedStudy) -> list[str]:
    """The devices a trial of ``study`` is measured on (sorted names, each once)."""
    return sorted({s.ref.device for s in study.sources.values() if s.kind == "device"})


def build_space(name: str, options: dict[str, Any]) -> SearchSpace:
    try:
        cls = SPACES.get(name)
    except UnknownNameError as exc:
        raise SpecError.at(("search_space", "name"), str(exc)) from exc
    try:
        return cls(options)
    except ValidationError as exc:
        raise SpecError.from_validation(("search_space", "options"), exc,
                                        _fields(getattr(cls, "Options", None))) from exc
    except SpaceError as exc:  # a DataPathError knows its field (search_space.options.path)
        field = getattr(exc, "field", None)
        loc = tuple(field.split(".")) if field else ("search_space", "options")
        raise SpecError.at(loc, str(exc)) from exc


def _resolve_metric(
    ref: MetricRef, loc: tuple, space: SearchSpace, devices: DeviceCatalog
) -> MetricSource:
    if ref.device is not None:
        if not space.has_models:
            raise SpecError.at(
                (*loc, "device"),
                f"search space {space.name!r} has no models to run on a device; "
                "use its own metrics: " + ", ".join(sorted(space.metrics())),
            )
        try:
            device = devices.get(ref.device)
            profiler_cls = PROFILERS.get(device.kind)
        except (KeyError, UnknownNameError) as exc:
            raise SpecError.at((*loc, "device"), str(exc.args[0])) from exc
        allowed = profiler_cls.metric_names()
        if ref.metric not in allowed:
            raise SpecError.at(
                (*loc, "metric"),
                f"device {ref.device!r} ({device.kind}) does not report {ref.metric!r}; "
                f"allowed: {', '.join(allowed)}",
            )
        return MetricSource(ref, "device", profiler_cls.extra_metrics.get(ref.metric, "ms"))
    accuracy, costs = space.metrics(), space.cost_metrics()
    info: MetricInfo | None = accuracy.get(ref.metric) or costs.get(ref.metric)
    if info is None:
        allowed = sorted(accuracy) + sorted(costs)
        hint = " (device metrics such as latency_ms need a 'device')" if space.has_models else ""
        raise SpecError.at(
            (*loc, "metric"),
            f"search space {space.name!r} has no metric {ref.metric!r}; "
            f"allowed: {', '.join(allowed)}{hint}",
        )
    return MetricSource(ref, "accuracy" if ref.metric in accuracy else "cost", info.unit)


def resolve_spec(spec: StudySpec, *, devices: DeviceCatalog | None = None) -> ResolvedStudy:
    devices = devices or DeviceCatalog()
    space = build_space(spec.search_space.name, spec.search_space.options)
    try:
        StagePlan.for_spec(spec, space)
    except StageError as exc:
        raise SpecError.at((exc.field,), str(exc)) from exc
    try:
        strategy_cls = STRATEGIES.get(spec.strategy.name)
    except UnknownNameError as exc:
        raise SpecError.at(("strategy", "name"), str(exc)) from exc
    try:
        strategy = strategy_cls(spec.strategy.options)
    except ValidationError as exc:
        raise SpecError.from_validation(("strategy", "options"), exc,
                                        _fields(getattr(strategy_cls, "Options", None))) from exc
    sources: dict[str, MetricSource] = {}
    for i, obj in enumerate(spec.objectives):
        sources[obj.key] = _resolve_metric(obj, ("objectives", i), space, devices)
    for i, con in enumerate(spec.constraints):
        src = _resolve_metric(con, ("constraints", i), space, devices)
        sources.setdefault(con.key, src)
    if spec.finetune is not None:
        check_finetune(space, [s for s in sources.values() if s.kind == "accuracy"])
    check_accuracy_mode(spec, sources)
    return ResolvedStudy(spec, space, strategy, sources, devices)


def check_accuracy_mode(spec: StudySpec, sources: dict[str, MetricSource]) -> None:
    """A screening mode needs a known predictor and an accuracy objective to screen."""
    from surrogate import PREDICTORS

    acc = spec.accuracy
    if acc.predictor not in PREDICTORS:
        raise SpecError.at(("accuracy", "predictor"), f"unknown predictor {acc.predictor!r}; "
                           f"allowed: {', '.join(PREDICTORS.names())}")
    predictor_cls = PREDICTORS.get(acc.predictor)
    try:
        predictor_cls(acc.predictor_options)
    except ValidationError as exc:
        raise SpecError.from_validation(("accuracy", "predictor_options"), exc,
                                        _fields(getattr(predictor_cls, "Options", None))) from exc
    objectives = {o.key for o in spec.objectives}
    if acc.mode != "measured" and not any(
        src.kind == "accuracy" for key, src in sources.items() if key in objectives
    ):
        raise SpecError.at(("accuracy", "mode"), f"mode {acc.mode!r} screens accuracy "
                           "objectives, and this study has none; use 'measured'")


def _can_finetune(name: str) -> bool:
    try:
        return bool(getattr(SPACES.get(name), "can_finetune", False))
    except Exception:  # a plug-in that fails to import is simply not listed
        return False


def check_finetune(space: SearchSpace, accuracy: list[MetricSource]) -> None:
    """A ``finetune`` stage needs a space that can fine-tune and an accuracy metric to improve."""
    if not space.can_finetune:
        able = [n for n in SPACES.names() if _can_finetune(n)]
        raise SpecError.at(("finetune",), f"search space {space.name!r} cannot fine-tune; "
                           f"spaces that can: {', '.join(able) or '(none)'}")
    if not accuracy:
        raise SpecError.at(("finetune",), "fine-tuning needs an accuracy objective or "
                           "constraint (e.g. miou); costs and latency do not change")
