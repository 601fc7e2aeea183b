"""The ``randlanet`` search space (SSS3D): RandLA-Net subnets sharing one supernet's weights.

Dimensions (L = number of encoder layers of the supernet, 4 by default):

* stage 1, sampling parameters: ``num_points`` (input points), ``ratio_i`` (sub-sampling ratio
  of layer i; choices listed from the cheapest, largest ratio, to the most expensive),
  ``k_i`` (neighbours of layer i).
* stage 2, architecture parameters: ``depth`` (encoder layers used) and ``width_i`` (output
  width d_i of layer i; the block emits 2*d_i channels).

Defaults: 3 x 3^4 x 3^4 x 3 x 3^4 = 4,782,969 archs. The ``layer i`` dims of layers beyond
``depth`` do not change the network (``inactive``): equivalent archs share one canonical key and
a study measures them once. An arch whose ``k_i`` exceeds the points left at layer i
is rejected by ``validate`` before anything runs.

Accuracy: ``miou`` and ``oa`` on the first ``val_scenes`` validation scenes; each scene is
sampled to ``num_points`` points (seeded, same for every arch), predicted, and the predictions
are carried to every point of the scene by nearest neighbour, so fewer input points cost
accuracy as they would in deployment. With ``calibrate_bn`` > 0 each subnet's BatchNorm
statistics are first re-estimated on that many training scenes (Once-for-All's recalibration).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from scipy.spatial import cKDTree

from paretonas_core.compute import CPU, Compute, compute_of
from paretonas_core.segmentation import confusion_matrix, mean_iou, pixel_accuracy
from search_spaces.base import (
    Arch,
    ArchError,
    Dim,
    EvalContext,
    MetricInfo,
    SearchSpace,
    SpaceError,
    SpaceOptions,
)
from search_spaces.paths import resolve_data_path
from search_spaces.randlanet import data as scenes
from search_spaces.randlanet.checkpoint import load_supernet, read_config
from search_spaces.randlanet.elastic import SharedMLP
from search_spaces.randlanet.geometry import PointGeometry
from search_spaces.randlanet.model import NetConfig, RandLANet, SubnetConfig, static_config

log = logging.getLogger(__name__)


@dataclass
class SampledScene:
    """One scene sampled to ``num_points`` (seeded): the model's input, the neighbourhoods of
    its points (filled as subnets run on it) and, for scoring, the sampled point nearest to
    each of the scene's points."""

    scene: scenes.Scene  # held, so the id() in the cache key cannot be reused while cached
    idx: np.ndarray  # the sampled points, in the model's (random) order
    input: torch.Tensor  # (1, num_points, in_features)
    geometry: PointGeometry
    nearest: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # sampling, nearest: their cost
    #: input and neighbourhoods copied to a GPU, per device (made once, kept with the sample)
    views: dict[str, tuple[torch.Tensor, PointGeometry]] = field(default_factory=dict)

    def on(self, compute: Compute) -> tuple[torch.Tensor, PointGeometry]:
        """The model's input and its kept neighbourhoods on ``compute``'s device."""
        if not compute.is_cuda:
            return self.input, self.geometry
        view = self.views.get(compute.device)
        if view is None:
            x = compute.to(self.input)
            view = (x, PointGeometry(x[..., :3], backend=self.geometry.backend,
                                     keep=self.geometry.keep))
            self.views[compute.device] = view
        return view


def _sorted_unique(values: list[int], *, descending: bool = False) -> tuple[int, ...]:
    return tuple(sorted(set(values), reverse=descending))


class RandLANetOptions(SpaceOptions):
    checkpoint: str | None = Field(
        default=None, description="supernet from 'paretonas supernet train randlanet' "
        "(safetensors, under a data directory); without it the supernet is randomly initialised"
    )
    data: str | None = Field(default=None, description="scene folder ({train,val}/*.npy|txt)")
    val_scenes: int = Field(default=4, ge=1, le=10_000, description="validation subset size")
    eval_seed: int = Field(default=0, ge=0, description="seed of the per-scene point sampling")
    num_classes: int = Field(default=4, ge=2, le=1000)
    max_widths: list[int] = Field(default=[16, 64, 128, 256], min_length=1, max_length=8)
    width_fractions: list[float] = Field(default=[0.5, 0.75, 1.0], min_length=1, max_length=8)
    depths: list[int] | None = Field(default=None, description="default: 2..len(max_widths)")
    num_points: list[int] = Field(default=[1024, 2048, 4096], min_length=1, max_length=16)
    ratios: list[int] = Field(default=[4, 3, 2], min_length=1, max_length=8)
    ks: list[int] = Field(default=[8, 12, 16], min_length=1, max_length=8)
    knn: Literal["kdtree", "torch"] = "kdtree"
    init_seed: int = Field(default=0, ge=0)
    calibrate_bn: int = Field(
        default=0, ge=0, le=1000, description="re-estimate each subnet's BatchNorm statistics on "
        "this many training scenes before evaluating it (0: keep the supernet's)"
    )
    finetune_scenes: int = Field(
        default=64, ge=1, le=100_000, description="training scenes a finalist is fine-tuned "
        "on (the first ones of train/; a study's finetune stage)")
    finetune_batch: int = Field(default=4, ge=1, le=1024, description="scenes per "
                                "fine-tuning step")
    geometry_cache: int = Field(
        default=64, ge=0, le=100_000, description="sampled scenes whose neighbour indices and "
        "position encodings are kept between evaluations (least recently used dropped; 0: "
        "none): archs with the same sampling parameters search neighbours once"
    )

    @field_validator("max_widths")
    @classmethod
    def _even(cls, v: list[int]) -> list[int]:
        if any(w < 2 or w % 2 or w > 4096 for w in v):
            raise ValueError(f"widths must be even, in 2..4096; got {v}")
        return v

    @field_validator("width_fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < f <= 1 for f in v):
            raise ValueError(f"fractions must be in (0, 1]; got {v}")
        return v

    @field_validator("num_points", "ratios", "ks")
    @classmethod
    def _positive(cls, v: list[int], info) -> list[int]:
        low = 2 if info.field_name == "ratios" else 1
        if any(x < low or x > 1_000_000 for x in v):
            raise ValueError(f"values must be in {low}..1000000; got {v}")
        return v


class RandLANetSpace(SearchSpace):
    name = "randlanet"
    Options = RandLANetOptions
    can_finetune = True

    def __init__(self, options: RandLANetOptions | dict[str, Any] | None = None):
        super().__init__(options)
        o: RandLANetOptions = self.options  # type: ignore[assignment]
        self._ckpt: Path | None = None
        if o.checkpoint is not None:
            self._ckpt = resolve_data_path(o.checkpoint, field="search_space.options.checkpoint")
            cfg = read_config(self._ckpt, knn=o.knn)
            for name, stored in (("max_widths", list(cfg.sub.widths)),
                                 ("num_classes", cfg.num_classes)):
                if name in o.model_fields_set and getattr(o, name) != stored:
                    raise SpaceError(f"{name}={getattr(o, name)} contradicts the checkpoint's "
                                     f"{stored}; leave it out to use the checkpoint's")
            if o.depths is not None and not set(o.depths) <= set(cfg.all_depths):
                raise SpaceError(f"depths {o.depths}: the checkpoint only has {cfg.all_depths}")
        else:
            n = len(o.max_widths)
            depths = tuple(o.depths or range(min(2, n), n + 1))
            cfg = NetConfig(
                sub=SubnetConfig(tuple(o.max_widths), (max(o.ratios),) * n, (max(o.ks),) * n),
                num_classes=o.num_classes, depths=depths, knn=o.knn,
            )
        self.net_config = cfg
        self.depth_choices = _sorted_unique(list(o.depths or cfg.all_depths))
        bad = [d for d in self.depth_choices if not 1 <= d <= cfg.sub.depth]
        if bad:
            raise SpaceError(f"depths {bad} outside 1..{cfg.sub.depth} (layers of the supernet)")
        self._dims = self._build_dims()
        self._net: RandLANet | None = None
        self._lock = threading.Lock()
        self._cost_cache: dict[str, dict[str, float]] = {}
        self._samples: OrderedDict[tuple, SampledScene] = OrderedDict()

    # --- the space -------------------------------------------------------------------------
    def _build_dims(self) -> dict[str, Dim]:
        o: RandLANetOptions = self.options  # type: ignore[assignment]
        n = self.net_config.sub.depth
        dims = {"num_points": Dim(_sorted_unique(o.num_points), stage=1,
                                  doc="input points sampled from the scene")}
        for i in range(n):
            dims[f"ratio_{i}"] = Dim(_sorted_unique(o.ratios, descending=True), stage=1,
                                     doc=f"sub-sampling ratio after layer {i}")
        for i in range(n):
            dims[f"k_{i}"] = Dim(_sorted_unique(o.ks), stage=1, doc=f"neighbours in layer {i}")
        dims["depth"] = Dim(self.depth_choices, stage=2, doc="encoder layers")
        for i, wmax in enumerate(self.net_config.sub.widths):
            widths = {max(2, int(round(f * wmax / 2)) * 2) for f in o.width_fractions}
            dims[f"width_{i}"] = Dim(tuple(sorted(widths)), stage=2,
                                     doc=f"output width d of layer {i} (max {wmax})")
        return dims

    def dimensions(self) -> dict[str, Dim]:
        return dict(self._dims)

    def inactive(self, arch: Arch) -> set[str]:
        """The sampling and width dims of layers beyond the arch's depth."""
        n = self.net_config.sub.depth
        return {f"{p}_{i}" for p in ("ratio", "k", "width") for i in range(int(arch["depth"]), n)}

    def metrics(self) -> dict[str, MetricInfo]:
        return {
            "miou": MetricInfo("maximize", "", "mean IoU on the validation subset"),
            "oa": MetricInfo("maximize", "", "overall point accuracy on the validation subset"),
        }

    def subnet(self, arch: Arch) -> tuple[SubnetConfig, int]:
        """The subnet config and input size of ``arch``; ArchError when it cannot run."""
        depth = int(arch["depth"])
        sub = SubnetConfig(
            widths=tuple(int(arch[f"width_{i}"]) for i in range(depth)),
            ratios=tuple(int(arch[f"ratio_{i}"]) for i in range(depth)),
            ks=tuple(int(arch[f"k_{i}"]) for i in range(depth)),
        )
        sizes = sub.level_sizes(int(arch["num_points"]))
        for i in range(depth):
            if sub.ks[i] > sizes[i]:
                raise ArchError(
                    f"k_{i}={sub.ks[i]} is larger than the {sizes[i]} points left at layer {i} "
                    f"(num_points={sizes[0]}, ratios {list(sub.ratios[:i])}); "
                    f"allowed: k_{i} <= {sizes[i]}"
                )
            if sizes[i + 1] < 1:
                raise ArchError(
                    f"ratio_{i}={sub.ratios[i]} leaves no point after layer {i} "
                    f"({sizes[i]} points); allowed: ratio_{i} <= {sizes[i]}"
                )
        return sub, sizes[0]

    def validate(self, arch: Any) -> Arch:
        checked = super().validate(arch)
        self.subnet(checked)
        return checked

    # --- the supernet ----------------------------------------------------------------------
    @property
    def net(self) -> RandLANet:
        with self._lock:
            if self._net is None:
                if self._ckpt is not None:
                    self._net = load_supernet(self._ckpt, knn=self.net_config.knn)
                else:
                    log.warning("randlanet: no checkpoint, using a randomly initialised supernet")
                    torch.manual_seed(self.options.init_seed)
                    self._net = RandLANet(self.net_config).eval()
            return self._net

    def supernet_forward(self, arch: Arch, example_input: Any) -> Any:
        sub, _ = self.subnet(arch)
        return self.net.eval()(example_input, sub)

    def extract(self, arch: Arch) -> RandLANet:
        sub, _ = self.subnet(arch)
        return self.net.extract(sub).eval()

    def build_static(self, arch: Arch) -> RandLANet:
        sub, _ = self.subnet(arch)
        return RandLANet(static_config(self.net_config, sub)).eval()

    def supernet_module(self) -> Any:
        return self.net

    def reorder_by_importance(self) -> None:
        self.net.reorder_by_importance()

    def example_input(self, arch: Arch) -> torch.Tensor:
        """(1, num_points, 6): xyz in a 4 m room and colours in [0, 1], seeded."""
        _, n = self.subnet(arch)
        gen = torch.Generator().manual_seed(self.options.eval_seed)
        xyz = torch.rand(1, n, 3, generator=gen) * 4.0 - 2.0
        rgb = torch.rand(1, n, self.net_config.in_features - 3, generator=gen)
        return torch.cat([xyz, rgb], dim=-1)

    # --- costs ------------------------------------------------------------------------------
    def cost(self, arch: Arch) -> dict[str, float]:
        """MACs of every shared MLP (rows x in x out), parameters, and the largest single-layer
        input+output activation at int8, counted by running the subnet once."""
        arch = self.validate(arch)
        if arch.key() in self._cost_cache:
            return dict(self._cost_cache[arch.key()])
        model = self.build_static(arch)
        totals = {"macs": 0.0, "peak": 0.0}

        def hook(mod: SharedMLP, inputs: tuple, out: torch.Tensor) -> None:
            rows = out.numel() // out.shape[-1]
            totals["macs"] += float(rows * mod.weight.shape[0] * mod.weight.shape[1])
            totals["peak"] = max(totals["peak"], float(inputs[0].numel() + out.numel()))

        handles = [m.register_forward_hook(hook) for m in model.modules()
                   if isinstance(m, SharedMLP)]
        try:
            with torch.inference_mode():
                model(self.example_input(arch))
        finally:
            for h in handles:
                h.remove()
        params = float(sum(p.numel() for p in model.parameters()))
        out = {"macs": totals["macs"], "params": params, "params_bytes": params,
               "peak_activation_bytes": totals["peak"]}
        self._cost_cache[arch.key()] = out
        return dict(out)

    # --- accuracy ---------------------------------------------------------------------------
    def val_scenes(self) -> list[scenes.Scene]:
        o: RandLANetOptions = self.options  # type: ignore[assignment]
        if o.data is None:
            raise SpaceError("search_space.options.data is needed to evaluate miou/oa: "
                             "a folder of scenes ({train,val}/*.npy|txt)")
        root = resolve_data_path(o.data, field="search_space.options.data")
        return _cached_split(root, "val", self.net_config.num_classes, o.val_scenes)

    def train_scenes(self, limit: int) -> list[scenes.Scene]:
        o: RandLANetOptions = self.options  # type: ignore[assignment]
        if o.data is None:
            raise SpaceError("search_space.options.data is needed for calibrate_bn")
        root = resolve_data_path(o.data, field="search_space.options.data")
        return _cached_split(root, "train", self.net_config.num_classes, limit)

    def evaluate(
        self, arch: Arch, metrics: list[str], *, context: EvalContext | None = None
    ) -> dict[str, float]:
        self.check_metrics(metrics)
        arch = self.validate(arch)
        compute = compute_of(context)
        model = None
        if self.options.calibrate_bn:
            model = self.calibrated(arch, self.train_scenes(self.options.calibrate_bn),
                                    compute=compute)
        values = self.score(arch, self.val_scenes(), model, compute=compute)
        return {m: values[m] for m in metrics}

    def finetune(
        self, arch: Arch, metrics: list[str], *, epochs: int, lr: float | None = None,
        context: EvalContext | None = None, examples: Sequence[int] | None = None,
        record_success: bool = False, score_threshold: float = 0.9,
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """Train the extracted subnet (inherited weights) on the first ``finetune_scenes``
        training scenes (or the ``examples`` among them), then score it on the validation
        scenes as ``evaluate`` does; the supernet is not changed."""
        from search_spaces.randlanet.finetune import finetune_subnet

        self.check_metrics(metrics)
        arch = self.validate(arch)
        o: RandLANetOptions = self.options  # type: ignore[assignment]
        compute = compute_of(context)
        _, num_points = self.subnet(arch)
        model = compute.module(self.extract(arch))
        lr = lr or 1e-3
        stats = finetune_subnet(
            model, self.train_scenes(o.finetune_scenes), num_points=num_points, epochs=epochs,
            batch=o.finetune_batch, lr=lr, seed=context.seed if context else o.init_seed,
            compute=compute, examples=None if examples is None else list(examples),
            record_success=record_success, score_threshold=score_threshold)
        values = self.score(arch, self.val_scenes(), model, compute=compute)
        return ({m: values[m] for m in metrics},
                {**stats, "epochs": epochs, "lr": lr, "compute": compute.describe()})

    def calibrated(self, arch: Arch, scene_list: list[scenes.Scene], *,
                   compute: Compute = CPU) -> torch.nn.Module:
        """The extracted subnet with its BatchNorm statistics re-estimated on ``scene_list``
        (cumulative averages over one seeded sample of each scene). Weight sharing leaves every
        subnet with statistics accumulated over all the subnets trained; Once-for-All
        recalibrates them per subnet in the same way. The model is on ``compute``'s device."""
        _, num_points = self.subnet(arch)
        model = compute.module(self.extract(arch))
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration batches
        model.train()
        with torch.no_grad():
            for i, scene in enumerate(scene_list):
                sample = self.sampled(scene, num_points, self.options.eval_seed + 10_000 + i)
                x, geometry = sample.on(compute)
                model(x, geometry=geometry)
        for bn in bns:
            bn.momentum = 0.01
        return model.eval()

    def score(self, arch: Arch, scene_list: list[scenes.Scene],
              model: torch.nn.Module | None = None, *, compute: Compute = CPU
              ) -> dict[str, float]:
        """miou and oa on ``scene_list`` of ``model`` (default: the extracted subnet of
        ``arch``; another model of the same arch, e.g. one trained from scratch, for baselines),
        run on ``compute`` (a given model is moved there)."""
        _, num_points = self.subnet(arch)
        model = compute.module(self.extract(arch) if model is None else model).eval()
        c = self.net_config.num_classes
        conf = np.zeros((c, c), dtype=np.int64)
        with torch.inference_mode():
            for i, scene in enumerate(scene_list):
                sample = self.sampled(scene, num_points, self.options.eval_seed + i,
                                      nearest=True)
                x, geometry = sample.on(compute)
                with compute.autocast():
                    logits = model(x, geometry=geometry)
                pred = logits[0].argmax(-1).cpu().numpy()
                # carry the predictions to every point of the scene (nearest sampled point)
                conf += confusion_matrix(pred[sample.nearest], scene.labels, c)
        return {"miou": float(mean_iou(conf)), "oa": pixel_accuracy(conf)}

    def kept_samples(self) -> list[tuple[int, int, SampledScene]]:
        """(num_points, seed, sample) of every kept sampled scene, least recently used first."""
        with self._lock:
            return [(n, seed, s) for (_, _, n, seed), s in self._samples.items()]

    def forget_samples(self) -> None:
        """Drop every kept sampled scene (the next evaluations search neighbours afresh)."""
        with self._lock:
            self._samples.clear()

    def sampled(self, scene: scenes.Scene, num_points: int, seed: int, *,
                nearest: bool = False) -> SampledScene:
        """``scene`` sampled to ``num_points`` with ``seed``, kept (``geometry_cache``) so that
        every arch with the same sampling parameters reuses its neighbourhoods. Keyed by the
        scene's identity: a scene object is loaded once per file (``_cached_split``)."""
        key = (id(scene), len(scene), num_points, seed)
        with self._lock:
            sample = self._samples.get(key)
            if sample is not None:
                self._samples.move_to_end(key)
        if sample is None:
            started = time.perf_counter()
            idx = scenes.sample_points(scene, num_points, np.random.default_rng(seed))
            x = scenes.features(scene, idx)[None]
            keep = self.options.geometry_cache > 0
            sample = SampledScene(scene, idx, x, PointGeometry(
                x[..., :3], backend=self.net_config.knn, keep=keep))
            sample.seconds["sampling"] = time.perf_counter() - started
            if keep:
                with self._lock:
                    self._samples[key] = sample
                    while len(self._samples) > self.options.geometry_cache:
                        self._samples.popitem(last=False)
        if nearest and sample.nearest is None:
            started = time.perf_counter()
            _, sample.nearest = cKDTree(scene.xyz[sample.idx]).query(scene.xyz, k=1)
            sample.seconds["nearest"] = time.perf_counter() - started
        return sample


_SPLITS: dict[tuple, list[scenes.Scene]] = {}
_SPLITS_LOCK = threading.Lock()


def _cached_split(root: Path, split: str, num_classes: int, limit: int) -> list[scenes.Scene]:
    files = scenes.scene_files(root, split)[:limit]
    key = (str(root), split, num_classes, tuple((str(f), f.stat().st_mtime_ns) for f in files))
    with _SPLITS_LOCK:
        if key not in _SPLITS:
            _SPLITS[key] = [scenes.load_scene(f, num_classes) for f in files]
        return _SPLITS[key]
