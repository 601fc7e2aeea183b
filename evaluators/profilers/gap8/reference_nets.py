"""The networks of the GAP8 calibration set (``published_latency.csv``), built at any width.

MobileNetV2 comes from torchvision; MobileNetV1 (not in torchvision) is written here; the
"large minimalistic" MobileNetV3 is torchvision's MobileNetV3 with the minimalistic recipe (3x3
kernels everywhere, no squeeze-excite, ReLU). DS-CNN is the keyword-spotting net of "Hello Edge"
(Zhang et al. 2017) as GreenWaves trained and deployed it (``calibration.csv``: sizes from the
``--model_size_info`` of their training README). Only structure matters: weights stay random.
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


#: DS-CNN sizes (GreenWaves keyword_spotting, ML-KWS-for-GAP-training/README.md): channels, first
#: conv stride (time, freq), number of depthwise-separable layers, the first one's stride
_DS_CNN = {
    "ds_cnn_s": (64, (2, 2), 4, (1, 1)),
    "ds_cnn_m": (172, (2, 1), 4, (2, 2)),
    "ds_cnn_l": (276, (2, 1), 5, (2, 2)),
}


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) of one dimension."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def ds_cnn(name: str, n_classes: int = 12, in_hw: tuple[int, int] = (49, 10)) -> Any:
    """DS-CNN on a (time 49, MFCC 10) input: a 10x4 conv, depthwise-separable 3x3 layers (each
    depthwise + BN + ReLU, pointwise + BN + ReLU), global average pool, fully connected."""
    from torch import nn

    ch, stride, n_ds, first_ds_stride = _DS_CNN[name]
    t, f = in_hw
    pt, pf = _same_pad(t, 10, stride[0]), _same_pad(f, 4, stride[1])
    layers: list[nn.Module] = [
        nn.ZeroPad2d((pf[0], pf[1], pt[0], pt[1])),
        nn.Conv2d(1, ch, (10, 4), stride, bias=True), nn.BatchNorm2d(ch), nn.ReLU(),
    ]
    t, f = -(-t // stride[0]), -(-f // stride[1])
    for i in range(n_ds):
        s = first_ds_stride if i == 0 else (1, 1)
        pt, pf = _same_pad(t, 3, s[0]), _same_pad(f, 3, s[1])
        layers += [
            nn.ZeroPad2d((pf[0], pf[1], pt[0], pt[1])),
            nn.Conv2d(ch, ch, 3, s, groups=ch, bias=False), nn.BatchNorm2d(ch), nn.ReLU(),
            nn.Conv2d(ch, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(),
        ]
        t, f = -(-t // s[0]), -(-f // s[1])
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, n_classes)]
    return nn.Sequential(*layers)


BUILDERS: dict[str, Callable[[float], Any]] = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large_minimalistic": mobilenet_v3_large_minimalistic,
    **{name: (lambda _w, name=name: ds_cnn(name)) for name in _DS_CNN},
}


def build(model: str, width_mult: float) -> Any:
    if model not in BUILDERS:
        raise ValueError(f"unknown reference net {model!r}; allowed: {', '.join(BUILDERS)}")
    return BUILDERS[model](width_mult).eval()
