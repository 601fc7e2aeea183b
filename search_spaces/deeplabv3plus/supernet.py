"""The DeepLabV3+ supernet: every op holds its full-size weights; a ``NetConfig`` selects a slice.

``forward(x, cfg)`` runs one subnet *inside* the supernet (used for training with the sandwich
rule and by the contract tests); ``export(cfg)`` builds the standalone static model with copied
weights; ``reorder_by_importance()`` permutes channels once so that "first k" means "best k".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.deeplabv3plus import static
from search_spaces.deeplabv3plus.ops import DynamicBatchNorm2d, DynamicConv2d, permute_conv_
from search_spaces.deeplabv3plus.structure import LOW_LEVEL_LAST, BlockSpec, NetConfig, Structure
from search_spaces.elastic import importance_order, permute_batch_norm_


class DynamicConvBNAct(nn.Sequential):
    def __init__(self, inp, oup, k, *, stride=1, dilation=1, depthwise=False, act=nn.ReLU6):
        super().__init__(
            DynamicConv2d(inp, oup, k, stride=stride, dilation=dilation, depthwise=depthwise),
            DynamicBatchNorm2d(oup),
            act(),
        )

    def forward(  # type: ignore[override]
        self, x: Tensor, out_channels: int | None = None, in_index: Tensor | None = None
    ) -> Tensor:
        return self[2](self[1](self[0](x, out_channels, in_index)))

    def export(
        self, in_channels: int, out_channels: int | None = None, in_index: Tensor | None = None
    ) -> nn.Sequential:
        conv = self[0].export(in_channels, out_channels, in_index)
        return nn.Sequential(conv, self[1].export(conv.out_channels), type(self[2])())


class DynamicInvertedResidual(nn.Module):
    def __init__(self, spec: BlockSpec):
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        if spec.expand:
            layers.append(DynamicConvBNAct(spec.inp, spec.hidden, 1))
        layers += [
            DynamicConvBNAct(
                spec.hidden, spec.hidden, 3, stride=spec.stride, dilation=spec.dilation,
                depthwise=True,
            ),
            DynamicConv2d(spec.hidden, spec.oup, 1),
            DynamicBatchNorm2d(spec.oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor, hidden: int) -> Tensor:
        h = self.conv[0](x, hidden) if self.spec.expand else x
        h = self.conv[-3](h)
        h = self.conv[-1](self.conv[-2](h))
        return x + h if self.spec.residual else h

    def export(self, spec: BlockSpec) -> static.InvertedResidual:
        block = static.bare(static.InvertedResidual)
        block.use_res = spec.residual
        layers: list[nn.Module] = []
        if spec.expand:
            layers.append(self.conv[0].export(spec.inp, spec.hidden))
        layers += [
            self.conv[-3].export(spec.hidden),
            self.conv[-2].export(spec.hidden, spec.oup),
            self.conv[-1].export(spec.oup),
        ]
        block.conv = nn.Sequential(*layers)
        return block

    @torch.no_grad()
    def reorder_(self) -> None:
        """Sort hidden channels by the L1 norm of the projection weights that read them."""
        if not self.spec.expand:
            return
        order = importance_order(self.conv[2].weight, dim=1)
        permute_conv_(self.conv[0][0], order, dim=0)
        permute_batch_norm_(self.conv[0][1], order)
        permute_conv_(self.conv[1][0], order, dim=0)
        permute_batch_norm_(self.conv[1][1], order)
        permute_conv_(self.conv[2], order, dim=1)


class DynamicASPPPooling(nn.Sequential):
    def forward(self, x: Tensor, out_channels: int) -> Tensor:  # type: ignore[override]
        size = x.shape[-2:]
        y = self[3](self[2](self[1](self[0](x), out_channels)))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


class DynamicASPP(nn.Module):
    def __init__(self, in_channels: int, channels: int, rates: tuple[int, ...]):
        super().__init__()
        self.channels = channels
        branches: list[nn.Module] = [DynamicConvBNAct(in_channels, channels, 1, act=nn.ReLU)]
        for rate in rates:
            branches.append(
                DynamicConvBNAct(in_channels, channels, 3, dilation=rate, act=nn.ReLU)
            )
        branches.append(
            DynamicASPPPooling(
                nn.AdaptiveAvgPool2d(1),
                DynamicConv2d(in_channels, channels, 1),
                DynamicBatchNorm2d(channels),
                nn.ReLU(),
            )
        )
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            DynamicConv2d(len(branches) * channels, channels, 1),
            DynamicBatchNorm2d(channels),
            nn.ReLU(),
            nn.Dropout(0.1),
        )

    def kept(self, cfg: NetConfig) -> list[int]:
        """Indices into ``convs`` of the active branches: 1x1, chosen rates, pooling."""
        return [0, *(1 + i for i in cfg.aspp_branches), len(self.convs) - 1]

    def project_index(self, cfg: NetConfig, device: torch.device) -> Tensor:
        c = cfg.aspp_channels
        return torch.cat(
            [torch.arange(c, device=device) + j * self.channels for j in self.kept(cfg)]
        )

    def forward(self, x: Tensor, cfg: NetConfig) -> Tensor:
        c = cfg.aspp_channels
        outs = [self.convs[j](x, c) for j in self.kept(cfg)]
        y = self.project[0](torch.cat(outs, dim=1), c, self.project_index(cfg, x.device))
        return self.project[3](self.project[2](self.project[1](y)))

    def export(self, cfg: NetConfig, in_channels: int) -> static.ASPP:
        c = cfg.aspp_channels
        aspp = static.bare(static.ASPP)
        branches: list[nn.Module] = []
        for j in self.kept(cfg)[:-1]:
            branches.append(self.convs[j].export(in_channels, c))
        pool = self.convs[-1]
        branches.append(
            static.ASPPPooling(
                nn.AdaptiveAvgPool2d(1), pool[1].export(in_channels, c), pool[2].export(c),
                nn.ReLU(),
            )
        )
        aspp.convs = nn.ModuleList(branches)
        index = self.project_index(cfg, torch.device("cpu"))
        aspp.project = nn.Sequential(
            self.project[0].export(len(index), c, index),
            self.project[1].export(c),
            nn.ReLU(),
            nn.Dropout(self.project[3].p),
        )
        return aspp

    @torch.no_grad()
    def reorder_(self) -> None:
        """Sort each branch's channels by the projection weights reading them (the projection's
        own outputs are sorted by the decoder, which reads them)."""
        proj = self.project[0]
        for j, branch in enumerate(self.convs):
            segment = proj.weight[:, j * self.channels : (j + 1) * self.channels]
            order = importance_order(segment, dim=1)
            last = j == len(self.convs) - 1  # the pooling branch: (pool, conv, bn, relu)
            conv, bn = (branch[1], branch[2]) if last else (branch[0], branch[1])
            permute_conv_(conv, order, dim=0)
            permute_batch_norm_(bn, order)
            permute_conv_(proj, order, dim=1, start=j * self.channels)


class DynamicHead(nn.Module):
    def __init__(self, full: NetConfig, rates: tuple[int, ...]):
        super().__init__()
        self.low_channels = full.low_level_channels
        self.project = DynamicConvBNAct(full.low_level_in, full.low_level_channels, 1, act=nn.ReLU)
        self.aspp = DynamicASPP(full.high_level_out, full.aspp_channels, rates)
        self.classifier = nn.Sequential(
            DynamicConv2d(full.low_level_channels + full.aspp_channels, full.decoder_channels, 3),
            DynamicBatchNorm2d(full.decoder_channels),
            nn.ReLU(),
            DynamicConv2d(full.decoder_channels, full.num_classes, 1, bias=True),
        )

    def decoder_index(self, cfg: NetConfig, device: torch.device) -> Tensor:
        return torch.cat(
            [
                torch.arange(cfg.low_level_channels, device=device),
                torch.arange(cfg.aspp_channels, device=device) + self.low_channels,
            ]
        )

    def forward(self, low: Tensor, high: Tensor, cfg: NetConfig) -> Tensor:
        low = self.project(low, cfg.low_level_channels)
        out = self.aspp(high, cfg)
        out = F.interpolate(out, size=low.shape[2:], mode="bilinear", align_corners=False)
        y = torch.cat([low, out], dim=1)
        y = self.classifier[0](y, cfg.decoder_channels, self.decoder_index(cfg, y.device))
        return self.classifier[3](self.classifier[2](self.classifier[1](y)))

    def export(self, cfg: NetConfig) -> static.DeepLabHeadV3Plus:
        head = static.bare(static.DeepLabHeadV3Plus)
        head.project = self.project.export(cfg.low_level_in, cfg.low_level_channels)
        head.aspp = self.aspp.export(cfg, cfg.high_level_out)
        index = self.decoder_index(cfg, torch.device("cpu"))
        head.classifier = nn.Sequential(
            self.classifier[0].export(len(index), cfg.decoder_channels, index),
            self.classifier[1].export(cfg.decoder_channels),
            nn.ReLU(),
            self.classifier[3].export(cfg.decoder_channels),
        )
        return head

    @torch.no_grad()
    def reorder_(self) -> None:
        self.aspp.reorder_()
        dec = self.classifier[0]
        low = importance_order(dec.weight[:, : self.low_channels], dim=1)
        permute_conv_(self.project[0], low, dim=0)
        permute_batch_norm_(self.project[1], low)
        permute_conv_(dec, low, dim=1)
        aspp_out = importance_order(dec.weight[:, self.low_channels :], dim=1)
        permute_conv_(self.aspp.project[0], aspp_out, dim=0)
        permute_batch_norm_(self.aspp.project[1], aspp_out)
        permute_conv_(dec, aspp_out, dim=1, start=self.low_channels)
        order = importance_order(self.classifier[3].weight, dim=1)
        permute_conv_(dec, order, dim=0)
        permute_batch_norm_(self.classifier[1], order)
        permute_conv_(self.classifier[3], order, dim=1)


class DynamicBackbone(nn.Module):
    def __init__(self, full: NetConfig):
        super().__init__()
        stem = DynamicConvBNAct(3, full.stem_out, 3, stride=2)
        blocks = [DynamicInvertedResidual(b) for b in full.blocks]
        self.low_level_features = nn.Sequential(stem, *blocks[:LOW_LEVEL_LAST])
        self.high_level_features = nn.Sequential(*blocks[LOW_LEVEL_LAST:])

    def block(self, index: int) -> DynamicInvertedResidual:
        if index <= LOW_LEVEL_LAST:
            return self.low_level_features[index]
        return self.high_level_features[index - LOW_LEVEL_LAST - 1]

    def forward(self, x: Tensor, cfg: NetConfig) -> tuple[Tensor, Tensor]:
        x = self.low_level_features[0](x)
        low = None
        for spec in cfg.blocks:
            if low is None and spec.index > LOW_LEVEL_LAST:
                low = x
            x = self.block(spec.index)(x, spec.hidden)
        assert low is not None  # the high-level part always keeps at least one block per stage
        return low, x


class DeepLabSupernet(nn.Module):
    """DeepLabV3+ supernet; ``state_dict`` keys follow VainF's ``deeplabv3plus_mobilenet``."""

    def __init__(self, structure: Structure):
        super().__init__()
        self.structure = structure
        self.full = structure.net_config()
        self.backbone = DynamicBackbone(self.full)
        self.classifier = DynamicHead(self.full, structure.aspp_rates)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's MobileNetV2 initialisation (kaiming fan_out for convs, BN = identity).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, cfg: NetConfig | None = None) -> Tensor:
        cfg = cfg or self.full
        size = x.shape[-2:]
        low, high = self.backbone(x, cfg)
        out = self.classifier(low, high, cfg)
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)

    @torch.no_grad()
    def export(self, cfg: NetConfig) -> static.DeepLabV3Plus:
        """A standalone static model of ``cfg`` whose tensors are copies of the slices."""
        model = static.bare(static.DeepLabV3Plus)
        model.config = cfg
        model.backbone = static.bare(static.Backbone)
        stem = self.backbone.low_level_features[0].export(3)
        low = [self.backbone.block(b.index).export(b) for b in cfg.blocks
               if b.index <= LOW_LEVEL_LAST]
        high = [self.backbone.block(b.index).export(b) for b in cfg.blocks
                if b.index > LOW_LEVEL_LAST]
        model.backbone.low_level_features = nn.Sequential(stem, *low)
        model.backbone.high_level_features = nn.Sequential(*high)
        model.classifier = self.classifier.export(cfg)
        model.train(self.training)
        return model

    @torch.no_grad()
    def reorder_by_importance(self) -> None:
        for spec in self.full.blocks:
            self.backbone.block(spec.index).reorder_()
        self.classifier.reorder_()
