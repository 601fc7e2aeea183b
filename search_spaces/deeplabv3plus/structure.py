"""The DeepLabV3+ / MobileNetV2 search space as plain data: dimensions and arch -> ``NetConfig``.

The supernet follows the layout of torchvision's MobileNetV2 (``features.0`` stem,
``features.1..17`` inverted-residual blocks) cut DeepLabV3+-style into ``low_level_features``
(features 0-3, stride 4) and ``high_level_features`` (features 4-17), with the atrous head of
VainF/DeepLabV3Plus-Pytorch.

Elastic dimensions (all ordinal, smallest first):

* ``stage{k}_depth`` for the five MobileNetV2 stages with more than one block (k = 1..5): keep
  the first ``d`` blocks of the stage (the first block changes stride/width, so it always stays).
* ``block{i}_expand`` for every block i = 2..17 with expansion: hidden width = input * ratio
  (the first ``inp * ratio`` channels after importance reordering).
* ``aspp_rate{r}`` (bool) for each atrous rate: keep that ASPP branch (1x1 and image-pooling
  branches always stay).
* ``aspp_channels``, ``low_level_channels``, ``decoder_channels``: output widths of the ASPP
  branches + projection, of the low-level projection, and of the decoder's 3x3 conv.
* ``resolution``: the square input size the image is resized to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_spaces.base import Dim

#: MobileNetV2's inverted-residual setting: expand ratio t, channels c, blocks n, stride s.
MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
#: Feature index of the last block of the low-level part (stride 4, 24 channels at width 1).
LOW_LEVEL_LAST = 3
WIDTH_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding (never more than 10% below ``value``)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def width_choices(full: int) -> tuple[int, ...]:
    """Fractions of a full width, rounded to multiples of 8 (or 4 below 32), distinct."""
    divisor = 8 if full >= 32 else 4
    out = sorted({max(divisor, make_divisible(full * f, divisor)) for f in WIDTH_FRACTIONS})
    return tuple(c for c in out if c <= full) or (full,)


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual block as it runs: ``index`` is its torchvision feature index."""

    index: int
    inp: int
    oup: int
    hidden: int
    stride: int
    dilation: int
    expand: bool  # has a 1x1 expansion conv (t != 1)

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.inp == self.oup


@dataclass(frozen=True)
class NetConfig:
    """A concrete network (the supernet's full size or one subnet)."""

    stem_out: int
    blocks: tuple[BlockSpec, ...]
    num_classes: int
    low_level_channels: int
    aspp_channels: int
    aspp_branches: tuple[int, ...]  # kept atrous branches: indices into Structure.aspp_rates
    aspp_rates: tuple[int, ...]  # their dilation rates
    decoder_channels: int
    resolution: int

    @property
    def low_level_in(self) -> int:
        return [b for b in self.blocks if b.index <= LOW_LEVEL_LAST][-1].oup

    @property
    def high_level_out(self) -> int:
        return self.blocks[-1].oup


@dataclass(frozen=True)
class Structure:
    """Fixed (non-searchable) hyper-parameters of the supernet, and the space they span."""

    num_classes: int = 21
    width_mult: float = 1.0
    output_stride: int = 16
    expand_ratios: tuple[int, ...] = (3, 4, 6)
    aspp_channels: int = 256
    low_level_channels: int = 48
    decoder_channels: int = 256
    resolutions: tuple[int, ...] = (384, 448, 512)

    @property
    def aspp_rates(self) -> tuple[int, ...]:
        return (6, 12, 18) if self.output_stride == 16 else (12, 24, 36)

    @property
    def stem_out(self) -> int:
        return make_divisible(32 * self.width_mult)

    def blocks(self) -> list[tuple[int, int, int, int, int, int, int]]:
        """All 17 blocks: (index, stage, inp, oup, t, stride, dilation), VainF's dilation rule."""
        out = []
        inp, current_stride, dilation = self.stem_out, 2, 1
        index = 1
        for stage, (t, c, n, s) in enumerate(MOBILENET_V2_SETTING):
            oup = make_divisible(c * self.width_mult)
            previous_dilation = dilation
            if current_stride == self.output_stride:
                stride, dilation = 1, dilation * s
            else:
                stride, current_stride = s, current_stride * s
            for i in range(n):
                if i == 0:
                    out.append((index, stage, inp, oup, t, stride, previous_dilation))
                else:
                    out.append((index, stage, oup, oup, t, 1, dilation))
                index += 1
            inp = oup
        return out

    def dimensions(self) -> dict[str, Dim]:
        dims: dict[str, Dim] = {}
        for stage, (_t, _c, n, _s) in enumerate(MOBILENET_V2_SETTING):
            if n > 1:
                dims[f"stage{stage}_depth"] = Dim(
                    tuple(range(max(1, n - 2), n + 1)),
                    doc=f"blocks kept in MobileNetV2 stage {stage} (of {n})",
                )
        for index, _stage, inp, _oup, t, _s, _d in self.blocks():
            if t != 1:
                dims[f"block{index}_expand"] = Dim(
                    tuple(sorted(self.expand_ratios)),
                    doc=f"expand ratio of block {index} (hidden = {inp} * ratio)",
                )
        for rate in self.aspp_rates:
            dims[f"aspp_rate{rate}"] = Dim(
                (False, True), doc=f"keep the ASPP branch of rate {rate}"
            )
        dims["aspp_channels"] = Dim(width_choices(self.aspp_channels), doc="ASPP width")
        dims["low_level_channels"] = Dim(
            width_choices(self.low_level_channels), doc="low-level projection width"
        )
        dims["decoder_channels"] = Dim(width_choices(self.decoder_channels), doc="decoder width")
        dims["resolution"] = Dim(tuple(sorted(self.resolutions)), doc="square input size (px)")
        return dims

    def net_config(self, arch: Mapping[str, Any] | None = None) -> NetConfig:
        """The network of ``arch`` (already validated); ``None`` gives the full supernet."""
        dims = self.dimensions()
        if arch is None:
            arch = {name: dim.largest for name, dim in dims.items()}
        blocks: list[BlockSpec] = []
        position_in_stage: dict[int, int] = {}
        for index, stage, inp, oup, t, stride, dilation in self.blocks():
            pos = position_in_stage.get(stage, 0)
            position_in_stage[stage] = pos + 1
            depth_key = f"stage{stage}_depth"
            if depth_key in arch and pos >= int(arch[depth_key]):
                continue
            ratio = int(arch[f"block{index}_expand"]) if t != 1 else 1
            blocks.append(BlockSpec(index, inp, oup, inp * ratio, stride, dilation, t != 1))
        kept = tuple(i for i, r in enumerate(self.aspp_rates) if arch[f"aspp_rate{r}"])
        return NetConfig(
            stem_out=self.stem_out,
            blocks=tuple(blocks),
            num_classes=self.num_classes,
            low_level_channels=int(arch["low_level_channels"]),
            aspp_channels=int(arch["aspp_channels"]),
            aspp_branches=kept,
            aspp_rates=tuple(self.aspp_rates[i] for i in kept),
            decoder_channels=int(arch["decoder_channels"]),
            resolution=int(arch["resolution"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "width_mult": self.width_mult,
            "output_stride": self.output_stride,
            "expand_ratios": list(self.expand_ratios),
            "aspp_channels": self.aspp_channels,
            "low_level_channels": self.low_level_channels,
            "decoder_channels": self.decoder_channels,
            "resolutions": list(self.resolutions),
        }
