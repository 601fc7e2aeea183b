"""The ``SearchSpace`` contract every space meets (table, DeepLabV3+, RandLA-Net, BERT).

A space is a set of named dimensions (each a finite ordered list of choices, tagged with the
search *stage* it belongs to), a way to turn an arch into a standalone ``nn.Module`` carrying the
supernet's weights (``extract``), its costs, its accuracy metrics, and a numeric encoding for
surrogate predictors.

Constructors must be cheap and must validate their options: the API builds a space to validate a
study before queueing it. Heavy work (loading a checkpoint, reading a dataset) happens lazily on
first use.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from paretonas_core.compute import Compute

ChoiceValue = int | float | str | bool


class SpaceError(ValueError):
    """Bad space options or data (file, column, checkpoint); the message names what is wrong."""


class ArchError(ValueError):
    """An arch outside the space; the message names the dimension and the allowed values."""


class UnknownMetricError(ArchError):
    """A metric the space cannot compute. An ``ArchError`` so that, like an arch outside the
    space, it fails the one trial that asked, never the whole study."""


@dataclass(frozen=True)
class Dim:
    """One dimension of a space.

    ``choices`` are ordered from smallest to largest when ``ordinal`` (depth, width, resolution),
    so ``choices[-1]`` is the largest subnet's value; categorical dims (an op type) have no order.
    ``stage`` groups dims for two-stage search (SSS3D: stage 1 = sampling parameters).
    """

    choices: tuple[ChoiceValue, ...]
    ordinal: bool = True
    stage: int = 1
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError("a dimension needs at least one choice")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"duplicate choices in {self.choices}")

    @property
    def largest(self) -> ChoiceValue:
        return self.choices[-1]

    @property
    def smallest(self) -> ChoiceValue:
        return self.choices[0]


class Arch(Mapping[str, ChoiceValue]):
    """An immutable mapping dim name -> chosen value, with a stable content key."""

    __slots__ = ("_data", "_key")

    def __init__(self, data: Mapping[str, ChoiceValue] | None = None, **kwargs: ChoiceValue):
        merged = dict(data or {}, **kwargs)
        self._data = {k: merged[k] for k in sorted(merged)}
        self._key: str | None = None

    def __getitem__(self, name: str) -> ChoiceValue:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Arch({self._data!r})"

    def to_dict(self) -> dict[str, ChoiceValue]:
        return dict(self._data)

    def key(self) -> str:
        """sha256 of the canonical JSON (sorted keys): used to de-duplicate and cache."""
        if self._key is None:
            canon = json.dumps(self._data, sort_keys=True, separators=(",", ":"))
            self._key = hashlib.sha256(canon.encode()).hexdigest()
        return self._key

    def replace(self, **changes: ChoiceValue) -> Arch:
        return Arch(self._data, **changes)


@dataclass(frozen=True)
class MetricInfo:
    """A metric a space can compute for an arch (accuracy-like or cost-like)."""

    direction: Literal["maximize", "minimize"]
    unit: str = ""
    doc: str = ""
    kind: Literal["accuracy", "cost"] = "accuracy"


COST_METRICS: dict[str, MetricInfo] = {
    "macs": MetricInfo("minimize", "MAC", "multiply-accumulates of one inference", "cost"),
    "params": MetricInfo("minimize", "", "number of parameters", "cost"),
    "params_bytes": MetricInfo("minimize", "B", "parameter storage at int8", "cost"),
    "peak_activation_bytes": MetricInfo(
        "minimize", "B", "largest live activation memory of one inference at int8", "cost"
    ),
}


class SpaceOptions(BaseModel):
    """Base of every space's options model: unknown options are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class EvalContext:
    """What the runner hands a space when evaluating: a seed, where torch runs (``compute``:
    None is the CPU, see ``paretonas_core.compute``) and where to log progress."""

    seed: int = 0
    compute: Compute | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class SearchSpace(ABC):
    """Base class of all search spaces (see module docstring)."""

    name: ClassVar[str]
    Options: ClassVar[type[SpaceOptions]] = SpaceOptions
    #: False for spaces whose archs are rows of a table (no model to extract or profile).
    has_models: ClassVar[bool] = True
    #: True for spaces that implement ``finetune`` (a study's optional ``finetune`` stage).
    can_finetune: ClassVar[bool] = False

    def __init__(self, options: SpaceOptions | Mapping[str, Any] | None = None):
        if not isinstance(options, SpaceOptions):
            options = self.Options.model_validate(dict(options or {}))
        self.options = options

    # --- the space -------------------------------------------------------------------------
    @abstractmethod
    def dimensions(self) -> dict[str, Dim]:
        """Name -> Dim, in a fixed order."""

    def metrics(self) -> dict[str, MetricInfo]:
        """Metrics ``evaluate`` can compute (accuracy-like); costs come from ``cost``."""
        return {}

    def check_metrics(self, metrics: Iterable[str]) -> None:
        """Raise ``UnknownMetricError`` naming the metrics ``evaluate`` cannot compute and the
        ones it can; every space's ``evaluate`` and ``finetune`` start with it."""
        allowed = self.metrics()
        unknown = sorted({m for m in metrics if m not in allowed})
        if unknown:
            raise UnknownMetricError(f"unknown metric(s) {unknown}; allowed: {sorted(allowed)}")

    def cost_metrics(self) -> dict[str, MetricInfo]:
        return dict(COST_METRICS) if self.has_models else {}

    def size(self) -> int:
        n = 1
        for dim in self.dimensions().values():
            n *= len(dim.choices)
        return n

    def validate(self, arch: Mapping[str, Any]) -> Arch:
        """Return ``arch`` as an Arch, or raise ArchError naming the bad dimension."""
        dims = self.dimensions()
        unknown = sorted(set(arch) - set(dims))
        if unknown:
            raise ArchError(f"unknown dimension(s) {unknown}; allowed: {sorted(dims)}")
        missing = [name for name in dims if name not in arch]
        if missing:
            raise ArchError(f"missing dimension(s) {missing}")
        for name, dim in dims.items():
            if arch[name] not in dim.choices or isinstance(arch[name], bool) != isinstance(
                dim.choices[0], bool
            ):
                raise ArchError(
                    f"{name}={arch[name]!r} is outside the space; allowed: {list(dim.choices)}"
                )
        return Arch(arch)

    def inactive(self, arch: Arch) -> set[str]:
        """Dimensions whose value does not change ``arch``'s network (e.g. the widths of layers
        beyond its depth). Default: none."""
        return set()

    def canonical(self, arch: Arch) -> Arch:
        """``arch`` with its inactive dimensions at their first choice. Equivalent archs share
        one canonical arch (and key), so a study measures each distinct network once."""
        off = self.inactive(arch)
        if not off:
            return arch
        dims = self.dimensions()
        return arch.replace(**{n: dims[n].choices[0] for n in sorted(off)})

    def largest(self) -> Arch:
        return Arch({n: d.largest for n, d in self.dimensions().items()})

    def smallest(self) -> Arch:
        return Arch({n: d.smallest for n, d in self.dimensions().items()})

    def sample(self, rng: np.random.Generator) -> Arch:
        return Arch(
            {n: d.choices[int(rng.integers(len(d.choices)))] for n, d in self.dimensions().items()}
        )

    def is_valid(self, arch: Arch) -> bool:
        """Whether the space can evaluate ``arch`` at all (an arch of the grid that the space
        has no network or row for is not). The runner re-asks the sampler for such archs
        instead of spending a trial on them (``service.engine.valid_ask``). Default: every arch of
        the grid."""
        return True

    def enumerate_archs(self) -> list[Arch] | None:
        """Every evaluable arch when the space is a finite list of them (a table whose rows do
        not cover the full grid), else None. Strategies that can use it (the surrogate one)
        then never propose an arch that cannot be evaluated."""
        return None

    # --- encodings for surrogates ------------------------------------------------------------
    def encode(self, arch: Mapping[str, Any]) -> np.ndarray:
        """Ordinal dims -> one feature in [0, 1] (index / (n-1)); categorical -> one-hot."""
        feats: list[float] = []
        for name, dim in self.dimensions().items():
            idx = dim.choices.index(arch[name])
            if dim.ordinal:
                feats.append(idx / (len(dim.choices) - 1) if len(dim.choices) > 1 else 0.0)
            else:
                feats.extend(1.0 if i == idx else 0.0 for i in range(len(dim.choices)))
        return np.asarray(feats, dtype=np.float64)

    def decode(self, vector: np.ndarray) -> Arch:
        """Inverse of ``encode`` (nearest choice for ordinal features, argmax for one-hot)."""
        out: dict[str, ChoiceValue] = {}
        pos = 0
        for name, dim in self.dimensions().items():
            n = len(dim.choices)
            if dim.ordinal:
                idx = int(round(float(vector[pos]) * (n - 1))) if n > 1 else 0
                out[name] = dim.choices[min(max(idx, 0), n - 1)]
                pos += 1
            else:
                out[name] = dim.choices[int(np.argmax(vector[pos : pos + n]))]
                pos += n
        return Arch(out)

    # --- models, costs, accuracy -------------------------------------------------------------
    def extract(self, arch: Arch) -> Any:
        """A standalone ``nn.Module`` with weights copied from the supernet."""
        raise NotImplementedError(f"search space {self.name!r} has no models to extract")

    # Hooks used by the contract suite (tests/contracts/search_space.py) for supernet spaces.
    def supernet_forward(self, arch: Arch, example_input: Any) -> Any:
        """Run the *supernet itself* with ``arch`` active (dynamic slicing), eval mode."""
        raise NotImplementedError(f"search space {self.name!r} has no supernet")

    def build_static(self, arch: Arch) -> Any:
        """A freshly initialised static model of ``arch`` (random weights, same structure as
        ``extract(arch)``): ``extract(arch).state_dict()`` must load into it."""
        raise NotImplementedError(f"search space {self.name!r} has no models")

    def supernet_module(self) -> Any:
        """The supernet ``nn.Module`` itself (the contract suite checks that extracted subnets
        share no tensor and hold no reference to it)."""
        return None

    def reorder_by_importance(self) -> None:
        """Permute channels/heads/neurons so "first k" is "best k"; the supernet's function is
        unchanged (the largest arch's output stays the same). Idempotent."""

    def example_input(self, arch: Arch) -> Any:
        """An input of the shape the subnet takes (for profilers)."""
        raise NotImplementedError(f"search space {self.name!r} has no models to profile")

    def calibration_inputs(self, arch: Arch, n: int) -> list[Any]:
        """Up to ``n`` real inputs of the subnet's shape from the study's data, for profilers
        that quantise (e.g. the GAP8 flow's int8 QDQ export); empty when the space has none."""
        return []

    def cost(self, arch: Arch) -> dict[str, float]:
        """macs, params, params_bytes, peak_activation_bytes."""
        raise NotImplementedError(f"search space {self.name!r} reports no costs")

    @abstractmethod
    def evaluate(
        self, arch: Arch, metrics: list[str], *, context: EvalContext | None = None
    ) -> dict[str, float]:
        """Compute the requested accuracy metrics of ``arch``.

        Raise ``ArchError`` when the arch cannot be evaluated (e.g. a table has no row for it);
        the runner records a failed trial with that reason.
        """

    def finetune(
        self,
        arch: Arch,
        metrics: list[str],
        *,
        epochs: int,
        lr: float | None = None,
        context: EvalContext | None = None,
        examples: Sequence[int] | None = None,
        record_success: bool = False,
        score_threshold: float = 0.9,
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """Fine-tune ``arch``'s extracted subnet (inherited weights) on the training data (the
        ``examples`` indices of it; default all), then return the requested accuracy metrics
        measured as ``evaluate`` does (so before and after compare), and details for the
        trial's info (time, steps, ``train_examples``, ...). With ``record_success`` the
        details also hold ``success_rate``: each training example's fraction of epochs in
        which it was correct (``search_spaces.success``; an image/scene is correct when its
        pixel accuracy is at least ``score_threshold``)."""
        raise NotImplementedError(f"search space {self.name!r} cannot fine-tune")
