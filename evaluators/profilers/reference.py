"""The reference network host measurements are normalised by (``method: reference``).

On a shared machine (and a virtual one: other tenants share the caches and memory of the host)
the speed of the CPU itself changes by up to ~1.6x in phases lasting from ~0.1 s to several
seconds, which a thread's CPU clock does not see. Timing a fixed reference network right after
each sample of the subnet, in the same runtime and thread, exposes both to the same phase: their
ratio barely moves (median ratio over 1 s, 5 repeats of 3 subnets: CV 0.2-1.5% where the raw
minimum moved 2-6% and the raw median 5-23%). The reported latency is that ratio times the
reference's *nominal* latency: the minimum of the reference timed alone over
``CALIBRATION_SECONDS``, measured once per process and runtime settings, or pinned with the
``reference_ms`` setting so that separate processes (workers) report in the same units.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

#: how long the reference is timed alone to find its nominal latency
CALIBRATION_SECONDS = 3.0
REFERENCE_INPUT = (1, 3, 64, 64)

_nominal: dict[Hashable, float] = {}
_lock = threading.Lock()


def reference_model() -> Any:
    """A small MobileNetV2-style CNN with fixed weights (~1-2 ms per call in eager PyTorch on
    one core): a strided stem, inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1
    project, residual add), pooling and a classifier: the op mix of the CNN search spaces."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, ch: int, expand: int) -> None:
            super().__init__()
            hidden = ch * expand
            self.body = nn.Sequential(
                nn.Conv2d(ch, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
                nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden), nn.ReLU6(),
                nn.Conv2d(hidden, ch, 1, bias=False), nn.BatchNorm2d(ch),
            )

        def forward(self, x: Any) -> Any:
            return x + self.body(x)

    class Reference(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False),
                                      nn.BatchNorm2d(16), nn.ReLU6())
            self.blocks = nn.Sequential(Block(16, 4), Block(16, 4), Block(16, 6))
            self.head = nn.Linear(16, 10)

        def forward(self, x: Any) -> Any:
            return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))

    with torch.random.fork_rng(devices=[]):  # fixed weights, the caller's RNG untouched
        torch.manual_seed(0)
        model = Reference().eval()
        for module in model.modules():  # non-trivial BN statistics, as in a trained net
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


def reference_input() -> Any:
    import torch

    return torch.randn(REFERENCE_INPUT, generator=torch.Generator().manual_seed(0))


def nominal_ms(key: Hashable, calibrate: Callable[[], float]) -> float:
    """The reference's nominal latency for ``key`` (runtime + its settings), calibrated by
    ``calibrate`` the first time this process needs it."""
    with _lock:
        if key not in _nominal:
            value = calibrate()
            if not value > 0:
                raise ValueError(f"reference calibration gave {value} ms; expected > 0")
            _nominal[key] = value
        return _nominal[key]


def forget_calibrations() -> None:
    """Drop every calibrated nominal latency (the next measurement calibrates again)."""
    with _lock:
        _nominal.clear()


def nominal_for(key: Hashable, reference: Callable[[], Any], settings: Any) -> float:
    """``settings.reference_ms`` when pinned, else the reference's minimum over
    ``CALIBRATION_SECONDS`` timed alone with ``settings``' clock and CPUs (once per ``key``)."""
    from evaluators.profilers.timing import time_samples

    if settings.reference_ms is not None:
        return float(settings.reference_ms)
    alone = settings.model_copy(update={"method": "min", "max_seconds": CALIBRATION_SECONDS})
    return nominal_ms(key, lambda: min(time_samples(reference, alone).samples))
