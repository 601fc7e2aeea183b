"""The networks of the GAP8 calibration set (``published_latency.csv``), built at any width.

MobileNetV2 comes from torchvision; MobileNetV1 (not in torchvision) is written here; the
"large minimalistic" MobileNetV3 is torchvision's MobileNetV3 with the minimalistic recipe (3x3
kernels everywhere, no squeeze-excite, ReLU). Only structure matters: weights stay random.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (output channels, stride) of MobileNetV1's depthwise-separable blocks after the 32-ch stem
_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
              (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def mobilenet_v1(width_mult: float = 1.0, num_classes: int = 1000) -> Any:
    """MobileNetV1 (Howard et al. 2017): 3x3 stem, 13 depthwise-separable blocks, pool, FC."""
    from torch import nn

    def ch(c: int) -> int:
        return max(8, int(c * width_mult))

    def cbr(cin: int, cout: int, k: int, s: int, groups: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    layers: list[nn.Module] = cbr(3, ch(32), 3, 2)
    cin = ch(32)
    for cout, stride in _V1_BLOCKS:
        layers += cbr(cin, cin, 3, stride, groups=cin) + cbr(cin, ch(cout), 1, 1)
        cin = ch(cout)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def mobilenet_v2(width_mult: float = 1.0) -> Any:
    import torchvision

    return torchvision.models.mobilenet_v2(width_mult=width_mult)


def mobilenet_v3_large_minimalistic(width_mult: float = 1.0) -> Any:
    """torchvision's MobileNetV3-Large with the minimalistic recipe (3x3, no SE, ReLU)."""
    from functools import partial

    from torchvision.models.mobilenetv3 import InvertedResidualConfig, MobileNetV3

    conf = partial(InvertedResidualConfig, width_mult=width_mult)
    rows = [  # (in, expanded, out, stride) of MobileNetV3-Large
        (16, 16, 16, 1), (16, 64, 24, 2), (24, 72, 24, 1), (24, 72, 40, 2), (40, 120, 40, 1),
        (40, 120, 40, 1), (40, 240, 80, 2), (80, 200, 80, 1), (80, 184, 80, 1),
        (80, 184, 80, 1), (80, 480, 112, 1), (112, 672, 112, 1), (112, 672, 160, 2),
        (160, 960, 160, 1), (160, 960, 160, 1),
    ]
    setting = [conf(i, 3, e, o, False, "RE", s, 1) for i, e, o, s in rows]
    last = InvertedResidualConfig.adjust_channels(1280, width_mult)
    return MobileNetV3(setting, last_channel=last)


BUILDERS: dict[str, Callable[[float], Any]] = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large_minimalistic": mobilenet_v3_large_minimalistic,
}


def build(model: str, width_mult: float) -> Any:
    if model not in BUILDERS:
        raise ValueError(f"unknown reference net {model!r}; allowed: {', '.join(BUILDERS)}")
    return BUILDERS[model](width_mult).eval()
