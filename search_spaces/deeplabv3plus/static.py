"""A static DeepLabV3+ (MobileNetV2 backbone) built from plain ``torch.nn`` modules.

This is what ``extract`` returns and what ``build_static`` builds fresh: ordinary Conv2d /
BatchNorm2d / ReLU modules (exportable to ONNX, profilable anywhere), named like
VainF/DeepLabV3Plus-Pytorch's ``deeplabv3plus_mobilenet`` so the full-size model's ``state_dict``
is that layout.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.deeplabv3plus.ops import same_padding
from search_spaces.deeplabv3plus.structure import LOW_LEVEL_LAST, BlockSpec, NetConfig


def bare(cls: type[nn.Module]) -> Any:
    """An instance of ``cls`` with no submodules yet (``export`` fills in copied layers; building
    the layers first only to replace them would double the extraction time)."""
    obj = cls.__new__(cls)
    nn.Module.__init__(obj)
    return obj


def conv_bn_act(
    inp: int,
    oup: int,
    kernel_size: int,
    *,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    act: type[nn.Module] = nn.ReLU6,
    device: torch.device | str | None = None,
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            inp,
            oup,
            kernel_size,
            stride=stride,
            padding=same_padding(kernel_size, dilation),
            dilation=dilation,
            groups=groups,
            bias=False,
            device=device,
        ),
        nn.BatchNorm2d(oup, device=device),
        act(),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand] -> 3x3 depthwise (dilated) -> 1x1 project (+ skip)."""

    def __init__(self, spec: BlockSpec, *, device: torch.device | str | None = None):
        super().__init__()
        self.use_res = spec.residual
        layers: list[nn.Module] = []
        if spec.expand:
            layers.append(conv_bn_act(spec.inp, spec.hidden, 1, device=device))
        layers += [
            conv_bn_act(
                spec.hidden,
                spec.hidden,
                3,
                stride=spec.stride,
                dilation=spec.dilation,
                groups=spec.hidden,
                device=device,
            ),
            nn.Conv2d(spec.hidden, spec.oup, 1, bias=False, device=device),
            nn.BatchNorm2d(spec.oup, device=device),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class ASPPPooling(nn.Sequential):
    """Image-level branch: global average, 1x1 conv, upsampled back."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        size = x.shape[-2:]
        return F.interpolate(super().forward(x), size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, cfg: NetConfig, in_channels: int, *, device=None):
        super().__init__()
        c = cfg.aspp_channels
        branches: list[nn.Module] = [conv_bn_act(in_channels, c, 1, act=nn.ReLU, device=device)]
        for rate in cfg.aspp_rates:
            branches.append(
                conv_bn_act(in_channels, c, 3, dilation=rate, act=nn.ReLU, device=device)
            )
        branches.append(
            ASPPPooling(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(in_channels, c, 1, bias=False, device=device),
                nn.BatchNorm2d(c, device=device),
                nn.ReLU(),
            )
        )
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * c, c, 1, bias=False, device=device),
            nn.BatchNorm2d(c, device=device),
            nn.ReLU(),
            nn.Dropout(0.1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class DeepLabHeadV3Plus(nn.Module):
    def __init__(self, cfg: NetConfig, *, device=None):
        super().__init__()
        self.project = conv_bn_act(
            cfg.low_level_in, cfg.low_level_channels, 1, act=nn.ReLU, device=device
        )
        self.aspp = ASPP(cfg, cfg.high_level_out, device=device)
        self.classifier = nn.Sequential(
            nn.Conv2d(
                cfg.low_level_channels + cfg.aspp_channels,
                cfg.decoder_channels,
                3,
                padding=1,
                bias=False,
                device=device,
            ),
            nn.BatchNorm2d(cfg.decoder_channels, device=device),
            nn.ReLU(),
            nn.Conv2d(cfg.decoder_channels, cfg.num_classes, 1, device=device),
        )

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        low = self.project(low)
        out = self.aspp(high)
        out = F.interpolate(out, size=low.shape[2:], mode="bilinear", align_corners=False)
        return self.classifier(torch.cat([low, out], dim=1))


class Backbone(nn.Module):
    def __init__(self, cfg: NetConfig, *, device=None):
        super().__init__()
        stem = conv_bn_act(3, cfg.stem_out, 3, stride=2, device=device)
        low = [InvertedResidual(b, device=device) for b in cfg.blocks if b.index <= LOW_LEVEL_LAST]
        high = [InvertedResidual(b, device=device) for b in cfg.blocks if b.index > LOW_LEVEL_LAST]
        self.low_level_features = nn.Sequential(stem, *low)
        self.high_level_features = nn.Sequential(*high)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        low = self.low_level_features(x)
        return low, self.high_level_features(low)


class DeepLabV3Plus(nn.Module):
    """Static DeepLabV3+: logits at the input's resolution."""

    def __init__(self, cfg: NetConfig, *, device: torch.device | str | None = None):
        super().__init__()
        self.config = cfg
        self.backbone = Backbone(cfg, device=device)
        self.classifier = DeepLabHeadV3Plus(cfg, device=device)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        low, high = self.backbone(x)
        out = self.classifier(low, high)
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)
