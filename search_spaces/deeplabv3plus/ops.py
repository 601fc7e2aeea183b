"""Elastic ops in the Once-for-All manner: each owns one full-size weight and runs on a slice.

They subclass ``nn.Conv2d`` / ``nn.BatchNorm2d`` so the supernet's ``state_dict`` keys are those
of an ordinary DeepLabV3+ (a public checkpoint loads straight into it). The active size is passed
to ``forward`` explicitly (no mutable "active config" flags), and the input width is read from the
tensor. ``export`` builds a plain ``nn`` module holding *copies* of the selected slice.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.elastic import permute_, sliced_batch_norm


def same_padding(kernel_size: int, dilation: int) -> int:
    return dilation * (kernel_size - 1) // 2


class DynamicConv2d(nn.Conv2d):
    """A conv whose output channels are the first ``out_channels`` (or ``out_index``) and whose
    input channels are the first ``x.shape[1]`` (or the explicit ``in_index``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        depthwise: bool = False,
        bias: bool = False,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=same_padding(kernel_size, dilation),
            dilation=dilation,
            groups=in_channels if depthwise else 1,
            bias=bias,
        )
        self.depthwise = depthwise

    def active_weight(
        self, in_channels: int, out_channels: int | None, in_index: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        if self.depthwise:
            bias = None if self.bias is None else self.bias[:in_channels]
            return self.weight[:in_channels], bias
        out = self.out_channels if out_channels is None else out_channels
        weight = self.weight[:out]
        weight = weight[:, :in_channels] if in_index is None else weight.index_select(1, in_index)
        return weight, None if self.bias is None else self.bias[:out]

    def forward(  # type: ignore[override]
        self, x: Tensor, out_channels: int | None = None, in_index: Tensor | None = None
    ) -> Tensor:
        in_channels = x.shape[1]
        weight, bias = self.active_weight(in_channels, out_channels, in_index)
        groups = in_channels if self.depthwise else 1
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)

    def export(
        self, in_channels: int, out_channels: int | None = None, in_index: Tensor | None = None
    ) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding a copy of the active slice."""
        weight, bias = self.active_weight(in_channels, out_channels, in_index)
        groups = in_channels if self.depthwise else 1
        conv = nn.Conv2d(
            in_channels,
            weight.shape[0],
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=groups,
            bias=bias is not None,
            device="meta",
        )
        conv.weight = nn.Parameter(weight.detach().clone())
        if bias is not None:
            conv.bias = nn.Parameter(bias.detach().clone())
        return conv


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the first ``x.shape[1]`` channels (statistics of the slice are updated in
    place during supernet training, as in OFA)."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        return sliced_batch_norm(x, self, c)

    def export(self, channels: int) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum, device="meta")
        bn.weight = nn.Parameter(self.weight.detach()[:channels].clone())
        bn.bias = nn.Parameter(self.bias.detach()[:channels].clone())
        bn.running_mean = self.running_mean[:channels].clone()
        bn.running_var = self.running_var[:channels].clone()
        bn.num_batches_tracked = self.num_batches_tracked.clone()
        return bn


def permute_conv_(conv: nn.Conv2d, order: Tensor, *, dim: int, start: int = 0) -> None:
    """Reorder a conv's output (``dim=0``, with its bias) or input (``dim=1``) channels within
    ``[start, start + len(order))``."""
    permute_(conv.weight, order, dim=dim, start=start)
    if dim == 0 and conv.bias is not None:
        permute_(conv.bias, order, start=start)
