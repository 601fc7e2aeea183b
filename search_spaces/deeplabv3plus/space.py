"""``deeplabv3plus``: the FMAS search space (DeepLabV3+ on MobileNetV2, weights inherited).

Candidates are sliced out of one supernet (a ``paretonas supernet train deeplabv3plus``
checkpoint, a DeepLabV3+ checkpoint in torchvision's MobileNetV2 layout, or random weights when
no checkpoint is given) and evaluated without fine-tuning on a validation subset. See
``structure.py`` for the dimensions; with the default options the space holds about 1.07e13
subnets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from paretonas_core.compute import CPU, Compute, compute_of
from paretonas_core.segmentation import (
    mean_iou,
    pixel_accuracy,
    random_subset,
    ranking_preserving_subset,
    stratified_subset,
)
from search_spaces.base import (
    Arch,
    Dim,
    EvalContext,
    MetricInfo,
    SearchSpace,
    SpaceError,
    SpaceOptions,
)
from search_spaces.deeplabv3plus import checkpoint as ckpt
from search_spaces.deeplabv3plus.costs import subnet_costs
from search_spaces.deeplabv3plus.data import VOCSegmentation
from search_spaces.deeplabv3plus.evaluation import (
    ImageCache,
    per_image_confusion,
    recalibrate_bn,
)
from search_spaces.deeplabv3plus.static import DeepLabV3Plus
from search_spaces.deeplabv3plus.structure import NetConfig, Structure
from search_spaces.deeplabv3plus.supernet import DeepLabSupernet
from search_spaces.paths import resolve_data_path

log = logging.getLogger(__name__)


class DeepLabOptions(SpaceOptions):
    checkpoint: str | None = Field(
        default=None, description="supernet or DeepLabV3+ checkpoint under a data directory"
    )
    data_dir: str | None = Field(
        default=None, description="VOC-format dataset root under a data directory (for miou)"
    )
    num_classes: int = Field(default=21, ge=2, le=255)
    width_mult: float = Field(default=1.0, gt=0.0, le=2.0, description="MobileNetV2 width")
    output_stride: Literal[8, 16] = 16
    expand_ratios: list[int] = Field(default=[3, 4, 6], min_length=1, max_length=8)
    aspp_channels: int = Field(default=256, ge=8, le=2048)
    low_level_channels: int = Field(default=48, ge=8, le=1024)
    decoder_channels: int = Field(default=256, ge=8, le=2048)
    resolutions: list[int] = Field(default=[384, 448, 512], min_length=1, max_length=16)
    subset_size: int = Field(default=64, ge=1, description="validation images per evaluation")
    subset_selection: Literal["stratified", "random", "ranking", "full"] = "stratified"
    ranking_references: int = Field(
        default=12, ge=3, le=64, description="subnets used to pick a ranking-preserving subset"
    )
    bn_recalibration_batches: int = Field(
        default=0, ge=0, le=1000, description="training batches to re-estimate BN stats (0: off)"
    )
    batch_size: int = Field(default=8, ge=1, le=512)
    reorder: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="sort channels by importance after loading (auto: unless the checkpoint "
        "was trained as a supernet)",
    )
    threads: int | None = Field(
        default=1, ge=1, le=256,
        description="torch CPU threads while evaluating and fine-tuning (null: torch's default)",
    )
    train_split: str = "train"
    val_split: str = "val"
    seed: int = Field(default=0, ge=0)

    @field_validator("expand_ratios")
    @classmethod
    def _ratios(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(not 1 <= r <= 8 for r in v):
            raise ValueError(f"expand_ratios must be distinct integers in 1..8, got {v}")
        return sorted(v)

    @field_validator("resolutions")
    @classmethod
    def _resolutions(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(not 32 <= r <= 2048 for r in v):
            raise ValueError(f"resolutions must be distinct integers in 32..2048, got {v}")
        return sorted(v)

    @field_validator("aspp_channels", "low_level_channels", "decoder_channels")
    @classmethod
    def _multiple_of_4(cls, v: int) -> int:
        if v % 4:
            raise ValueError(f"must be a multiple of 4 (so its fractions are whole), got {v}")
        return v

    def structure(self) -> Structure:
        return Structure(
            num_classes=self.num_classes,
            width_mult=self.width_mult,
            output_stride=self.output_stride,
            expand_ratios=tuple(self.expand_ratios),
            aspp_channels=self.aspp_channels,
            low_level_channels=self.low_level_channels,
            decoder_channels=self.decoder_channels,
            resolutions=tuple(self.resolutions),
        )


class DeepLabSpace(SearchSpace):
    """DeepLabV3+ supernet space (FMAS). Metrics: ``miou``, ``pixel_accuracy``."""

    name = "deeplabv3plus"
    Options = DeepLabOptions
    can_finetune = True

    def __init__(self, options: DeepLabOptions | dict[str, Any] | None = None):
        super().__init__(options)
        opts: DeepLabOptions = self.options  # type: ignore[assignment]
        self.structure = opts.structure()
        self._dims = self.structure.dimensions()
        self.checkpoint_path = (
            resolve_data_path(opts.checkpoint, field="search_space.options.checkpoint")
            if opts.checkpoint
            else None
        )
        self.data_path = (
            resolve_data_path(opts.data_dir, field="search_space.options.data_dir")
            if opts.data_dir
            else None
        )
        if self.data_path is not None and not self.data_path.is_dir():
            raise SpaceError(f"search_space.options.data_dir: {self.data_path} is not a directory")
        self._lock = threading.RLock()
        self._supernet: DeepLabSupernet | None = None
        self._val: ImageCache | None = None
        self._train: ImageCache | None = None
        self._subset: np.ndarray | None = None
        self.checkpoint_info: dict[str, Any] = {}

    @contextmanager
    def _threads(self) -> Iterator[None]:
        """Run torch on ``threads`` threads (restored afterwards): on a shared CPU, more threads
        than free cores make small models many times slower (threads wait on each other)."""
        wanted = self.options.threads  # type: ignore[attr-defined]
        before = torch.get_num_threads()
        if wanted is not None and wanted != before:
            torch.set_num_threads(wanted)
        try:
            yield
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)

    # --- the space --------------------------------------------------------------------------
    def dimensions(self) -> dict[str, Dim]:
        return self._dims

    def metrics(self) -> dict[str, MetricInfo]:
        return {
            "miou": MetricInfo("maximize", "", "mean IoU on the validation subset (0..1)"),
            "pixel_accuracy": MetricInfo("maximize", "", "pixel accuracy on the subset (0..1)"),
        }

    def net_config(self, arch: Arch | dict[str, Any]) -> NetConfig:
        return self.structure.net_config(self.validate(arch))

    # --- the supernet -----------------------------------------------------------------------
    @property
    def supernet(self) -> DeepLabSupernet:
        with self._lock:
            if self._supernet is None:
                # normal tensors even when first used under inference_mode (training, reordering
                # and fine-tuning need them)
                with torch.inference_mode(False):
                    self._supernet = self._load_supernet()
            return self._supernet

    def _load_supernet(self) -> DeepLabSupernet:
        opts: DeepLabOptions = self.options  # type: ignore[assignment]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(opts.seed)
            net = DeepLabSupernet(self.structure)
        trained = False
        if self.checkpoint_path is None:
            log.warning("deeplabv3plus: no checkpoint given; the supernet has random weights")
        else:
            obj = ckpt.read_checkpoint(self.checkpoint_path)
            ckpt.check_structure(obj, self.structure, self.checkpoint_path)
            ckpt.load_into(net, ckpt.state_dict_of(obj, self.checkpoint_path),
                           self.checkpoint_path)
            trained = bool(obj.get("supernet_trained", False))
            self.checkpoint_info = {
                k: obj[k] for k in ("format", "epoch", "step", "supernet_trained") if k in obj
            }
        if opts.reorder == "always" or (
            opts.reorder == "auto" and self.checkpoint_path is not None and not trained
        ):
            net.reorder_by_importance()
        return net.eval()

    def supernet_forward(self, arch: Arch, example_input: Any) -> Any:
        net = self.supernet.eval()
        return net(example_input, self.net_config(arch))

    def extract(self, arch: Arch) -> DeepLabV3Plus:
        cfg = self.net_config(arch)
        with torch.inference_mode(False):  # the subnet may be fine-tuned later
            return self.supernet.export(cfg).eval()

    def build_static(self, arch: Arch) -> DeepLabV3Plus:
        return DeepLabV3Plus(self.net_config(arch))

    def supernet_module(self) -> Any:
        return self.supernet

    def reorder_by_importance(self) -> None:
        self.supernet.reorder_by_importance()

    def example_input(self, arch: Arch) -> torch.Tensor:
        res = int(self.validate(arch)["resolution"])
        return torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(0))

    def calibration_inputs(self, arch: Arch, n: int) -> list[torch.Tensor]:
        """The first ``n`` training images at the arch's resolution (none without a dataset)."""
        if self.data_path is None:
            return []
        res = int(self.validate(arch)["resolution"])
        count = min(n, len(self.train.dataset))
        return [self.train.tensor(i, res)[None] for i in range(count)]

    def cost(self, arch: Arch) -> dict[str, float]:
        return subnet_costs(self.net_config(arch))

    # --- data and accuracy ------------------------------------------------------------------
    def _dataset(self, split: str) -> ImageCache:
        if self.data_path is None:
            raise SpaceError(
                "search_space.options.data_dir is required to compute miou/pixel_accuracy "
                "(a VOC-format dataset root)"
            )
        return ImageCache(VOCSegmentation(self.data_path, split,
                                          num_classes=self.structure.num_classes))

    @property
    def val(self) -> ImageCache:
        with self._lock:
            if self._val is None:
                self._val = self._dataset(self.options.val_split)  # type: ignore[attr-defined]
            return self._val

    @property
    def train(self) -> ImageCache:
        with self._lock:
            if self._train is None:
                self._train = self._dataset(self.options.train_split)  # type: ignore[attr-defined]
            return self._train

    def subset(self) -> np.ndarray:
        """Indices of the validation images candidates are scored on (chosen once)."""
        with self._lock:
            if self._subset is None:
                self._subset = self._select_subset()
                log.info("deeplabv3plus: validation subset of %d/%d images (%s)",
                         len(self._subset), len(self.val.dataset),
                         self.options.subset_selection)  # type: ignore[attr-defined]
            return self._subset

    def _select_subset(self) -> np.ndarray:
        opts: DeepLabOptions = self.options  # type: ignore[assignment]
        n = len(self.val.dataset)
        if opts.subset_selection == "full" or opts.subset_size >= n:
            return np.arange(n)
        if opts.subset_selection == "random":
            return random_subset(n, opts.subset_size, seed=opts.seed)
        presence = self.val.dataset.class_presence()
        if opts.subset_selection == "stratified":
            return stratified_subset(presence, opts.subset_size, seed=opts.seed)
        refs = self.reference_archs(opts.ranking_references)
        conf = np.stack([self.confusions(a, np.arange(n)) for a in refs])
        return ranking_preserving_subset(conf, opts.subset_size, presence=presence,
                                         seed=opts.seed)

    def reference_archs(self, k: int) -> list[Arch]:
        """Smallest, largest and ``k - 2`` seeded random archs (for ranking-based subsets)."""
        rng = np.random.default_rng(self.options.seed + 1)  # type: ignore[attr-defined]
        return [self.smallest(), self.largest(), *(self.sample(rng) for _ in range(k - 2))]

    def prepare(self, model: torch.nn.Module, arch: Arch, compute: Compute = CPU
                ) -> torch.nn.Module:
        """BN re-calibration on a few fixed training batches when enabled (else a no-op);
        ``model`` is on ``compute``'s device."""
        opts: DeepLabOptions = self.options  # type: ignore[assignment]
        if opts.bn_recalibration_batches:
            n = len(self.train.dataset)
            count = min(n, opts.bn_recalibration_batches * opts.batch_size)
            idx = list(np.random.default_rng(opts.seed).choice(n, size=count, replace=False))
            recalibrate_bn(model, self.train, idx, resolution=int(arch["resolution"]),
                           batch_size=opts.batch_size, compute=compute)
        return model.eval()

    def confusions(self, arch: Arch, indices: np.ndarray, *,
                   model: torch.nn.Module | None = None, compute: Compute = CPU) -> np.ndarray:
        """Per-image confusion matrices ``[len(indices), C, C]`` of ``arch`` (weights inherited,
        BN re-calibrated when enabled), run on ``compute`` (a given ``model`` is on it)."""
        arch = self.validate(arch)
        if model is None:  # extracted on the CPU (profilers get CPU models), moved once
            model = self.prepare(compute.module(self.extract(arch)), arch, compute)
        return per_image_confusion(
            model, self.val, indices, resolution=int(arch["resolution"]),
            num_classes=self.structure.num_classes,
            batch_size=self.options.batch_size,  # type: ignore[attr-defined]
            compute=compute,
        )

    def evaluate(
        self, arch: Arch, metrics: list[str], *, context: EvalContext | None = None,
        model: torch.nn.Module | None = None,
    ) -> dict[str, float]:
        self.check_metrics(metrics)
        with self._threads():
            conf = self.confusions(arch, self.subset(), model=model,
                                   compute=compute_of(context)).sum(axis=0)
        values = {"miou": float(mean_iou(conf)), "pixel_accuracy": pixel_accuracy(conf)}
        return {m: values[m] for m in metrics}

    def finetune(
        self, arch: Arch, metrics: list[str], *, epochs: int, lr: float | None = None,
        context: EvalContext | None = None, examples: Sequence[int] | None = None,
        record_success: bool = False, score_threshold: float = 0.9,
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """FMAS's last step: train the extracted subnet on the training split (or its
        ``examples``; inherited weights, the supernet's recipe at a lower learning rate), then
        score it on the same validation subset as during the search, and on the full
        validation set."""
        from search_spaces.deeplabv3plus.finetune import finetune_model

        self.check_metrics(metrics)  # before the training, not after it
        arch = self.validate(arch)
        opts: DeepLabOptions = self.options  # type: ignore[assignment]
        compute = compute_of(context)
        with self._threads():
            model = self.prepare(compute.module(self.extract(arch)), arch, compute)
            everything = np.arange(len(self.val.dataset))
            before_full = float(mean_iou(
                self.confusions(arch, everything, model=model, compute=compute).sum(0)))
            stats = finetune_model(
                model, self.train.dataset, resolution=int(arch["resolution"]), epochs=epochs,
                batch_size=max(2, opts.batch_size), lr=lr or 5e-4,
                seed=context.seed if context else opts.seed, compute=compute,
                examples=None if examples is None else list(examples),
                record_success=record_success, score_threshold=score_threshold,
            )
            values = self.evaluate(arch, metrics, model=model, context=context)
            after_full = float(mean_iou(
                self.confusions(arch, everything, model=model, compute=compute).sum(0)))
        details = {**stats, "epochs": epochs, "lr": lr or 5e-4, "compute": compute.describe(),
                   "miou_full_val_before": before_full, "miou_full_val_after": after_full}
        return values, details
