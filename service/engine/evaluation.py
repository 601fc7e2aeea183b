"""Turn an arch into the metric values a study asked for.

Accuracy metrics come from the space's evaluator, costs from its cost model, device metrics from
the device's profiler run on ``space.extract(arch)``. The subnet is extracted at most once per
arch, and device measurements go through an optional persistent cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from evaluators.profilers.base import settings_hash
from paretonas_core.compute import Compute, choose_device, resolve_compute, worker_device
from search_spaces.base import Arch, EvalContext
from service.engine.resolve import ResolvedStudy, measured_devices

log = logging.getLogger(__name__)


class TrialFailure(Exception):
    """The arch could not be evaluated; the message is stored as the trial's error."""


class MeasurementCache(Protocol):
    """Device measurements by (arch, space, device, profiler, version, settings)."""

    def get(self, key: dict[str, str]) -> dict[str, Any] | None: ...

    def put(self, key: dict[str, str], result: dict[str, Any]) -> None: ...


@dataclass
class Evaluation:
    values: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)


class ArchEvaluator:
    """Evaluates archs for one resolved study."""

    def __init__(
        self, study: ResolvedStudy, *, cache: MeasurementCache | None = None, seed: int = 0,
        compute: Compute | None = None,
    ):
        self.study = study
        self.cache = cache
        # where accuracy evaluation runs: the study's compute setting at this worker, resolved
        # on first use (a Ray driver without a GPU never evaluates; a worker asked for a CUDA
        # device it lacks fails the study at its first measured accuracy, saying so)
        self._compute = compute
        self.context = EvalContext(seed=seed)
        spec = study.spec.search_space
        self.space_key = settings_hash({"name": spec.name, "options": spec.options})
        self.screen = make_screen(study)

    def __call__(self, arch: Arch) -> Evaluation:
        from search_spaces.base import ArchError

        try:
            return self._evaluate(arch)
        except (ArchError, TrialFailure) as exc:
            raise TrialFailure(str(exc)) from exc
        except Exception as exc:  # a profiler or model failure fails this trial, not the study
            from evaluators.profilers.base import ProfilerError

            if isinstance(exc, ProfilerError):
                raise TrialFailure(f"profiler: {exc}") from exc
            raise

    def _evaluate(self, arch: Arch) -> Evaluation:
        space, sources = self.study.space, self.study.sources
        values: dict[str, float] = {}
        info: dict[str, Any] = {"sources": {}}
        accuracy = [s.ref.metric for s in sources.values() if s.kind == "accuracy"]
        if any(s.kind == "cost" for s in sources.values()) or space.has_models:
            costs = space.cost(arch) if space.has_models else {}
            info["costs"] = costs
            for key, src in sources.items():
                if src.kind == "cost":
                    values[key] = float(costs[src.ref.metric])
                    info["sources"][key] = "computed"
        devices = measured_devices(self.study)
        extracted: list[tuple[Any, Any]] = []  # extract the subnet once, and only if needed

        def model_and_input() -> tuple[Any, Any]:
            if not extracted:
                extracted.append((space.extract(arch).eval(), space.example_input(arch)))
            return extracted[0]

        if devices:
            info["devices"] = {}
        for device in devices:
            result, how = self._measure(arch, device, model_and_input)
            info["devices"][device] = result
            for key, src in sources.items():
                if src.kind == "device" and src.ref.device == device:
                    values[key] = float(result["metrics"][src.ref.metric])
                    info["sources"][key] = how
        if accuracy:  # last: screening decides from the cheap objectives computed above
            self._accuracy(arch, sorted(set(accuracy)), values, info)
        return Evaluation(values, info)

    def _accuracy(
        self, arch: Arch, metrics: list[str], values: dict[str, float], info: dict[str, Any]
    ) -> None:
        """Measure the accuracy metrics, or keep predictions when the screen says so."""
        screen, sources = self.screen, self.study.sources
        decision = None
        if screen is not None:
            decision = screen.decide(self.study.space.encode(arch), values)
            info["screening"] = {
                "reason": decision.reason,
                "predicted": {k: {"mean": m, "std": sd} for k, (m, sd) in
                              decision.predicted.items()},
            }
        if decision is not None and not decision.measure:
            for key, (mean, _) in decision.predicted.items():
                values[key] = mean
                info["sources"][key] = "predicted"
            info["accuracy"] = "predicted"
            return
        if self.context.compute is None:
            self.context.compute = self._compute or study_compute(self.study.spec)
        measured = self.study.space.evaluate(arch, metrics, context=self.context)
        for key, src in sources.items():
            if src.kind == "accuracy":
                values[key] = float(measured[src.ref.metric])
                info["sources"][key] = "measured"
        info["accuracy"] = "measured"
        if screen is not None:
            screen.observe(self.study.space.encode(arch), values)

    def restore(self, records: list[Any]) -> None:
        """Feed a resumed study's measured trials to the screen."""
        if self.screen is None:
            return
        for rec in records:
            if (rec.state == "complete" and "duplicate_of" not in rec.info
                    and rec.info.get("accuracy", "measured") == "measured"):
                self.screen.observe(self.study.space.encode(Arch(rec.arch)), rec.values)

    def predictor_quality(self) -> dict[str, Any] | None:
        return self.screen.quality() if self.screen is not None else None

    def _measure(self, arch: Arch, device: str, model_and_input) -> tuple[dict, str]:
        """The device's result for ``arch``: from the cache, else measured (and cached)."""
        spec = self.study.devices.get(device)
        profiler = self.study.devices.profiler(device)
        key = {
            "arch_key": self.study.space.canonical(arch).key(), "space_key": self.space_key,
            "device": device,
            "profiler": profiler.name, "profiler_version": profiler.version,
            "settings_hash": settings_hash(spec.settings),
        }
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            return cached, "cached"
        model, example = model_and_input()
        if getattr(profiler, "wants_calibration_inputs", False):  # e.g. GAP8's int8 export
            samples = self.study.space.calibration_inputs(
                arch, int(profiler.settings.calibration_samples))  # type: ignore[attr-defined]
            measured = profiler.measure(model, example, calibration_inputs=samples or None)
        else:
            measured = profiler.measure(model, example)
        result = {
            "metrics": measured.all_metrics(), "samples_ms": measured.samples_ms,
            "details": measured.details, "profiler": profiler.name,
            "profiler_version": profiler.version,
        }
        if self.cache is not None:
            self.cache.put(key, result)
        return result, "measured"


def study_compute(spec: Any) -> Compute:
    """The resolved ``Compute`` of a study spec at this worker (``PARETONAS_DEVICE``)."""
    c = spec.compute
    return resolve_compute(c.device, amp=c.amp, prefetch=c.prefetch)


def needs_gpu(study: ResolvedStudy) -> bool:
    """Whether a trial of ``study`` uses a GPU, at this worker's settings: its compute device is
    CUDA (``auto`` only when the worker says ``cuda``), or it measures on a ``torch-cuda``
    device. The Ray backend then asks for one (``num_gpus``), so the cluster places it."""
    chosen = choose_device(study.spec.compute.device, worker_device())
    kinds = {study.devices.get(device).kind for device in measured_devices(study)}
    return chosen.startswith("cuda") or "torch-cuda" in kinds


def make_screen(study: ResolvedStudy) -> Any:
    """The accuracy screen of a ``surrogate``/``hybrid`` study; None when every candidate's
    accuracy is measured (or an accuracy metric outside the objectives must be measured anyway,
    e.g. for a constraint)."""
    spec = study.spec
    acc = spec.accuracy
    if acc.mode == "measured":
        return None
    objectives = {o.key for o in spec.objectives}
    accuracy_keys = [k for k, s in study.sources.items() if s.kind == "accuracy"]
    if not set(accuracy_keys) <= objectives:
        log.warning("accuracy metrics %s are not all objectives: every trial is measured",
                    accuracy_keys)
        return None
    from surrogate.screening import AccuracyScreen

    return AccuracyScreen(
        mode=acc.mode, objectives=[(o.key, o.direction) for o in spec.objectives],
        accuracy_keys=accuracy_keys, predictor=acc.predictor,
        predictor_options=acc.predictor_options, initial=acc.initial, kappa=acc.kappa,
        audit_fraction=acc.audit_fraction, seed=spec.seed,
    )
