"""RandLA-Net (Hu et al., CVPR 2020) in torch, as an elastic super-network.

Channels-last tensors: points are (B, N, C). One class serves as both the supernet (built at the
largest widths, with one bottleneck per allowed depth, run with a smaller ``SubnetConfig``) and
the static subnet that ``extract`` returns (built at the subnet's own widths and run as is).

Per encoder layer i (width d_i): a dilated residual block (shared MLP, two rounds of local spatial
encoding + attentive pooling, residual shortcut) producing 2*d_i channels, then random
sub-sampling by ``ratios[i]`` (max-pooling features over the ``ks[i]`` neighbours of each kept
point). The decoder up-samples by nearest neighbour and fuses the encoder skip at each level; a
per-point classifier follows.

Random sampling: the input points must come in random order (the data loader shuffles them with
a seeded generator); every layer keeps the first ``n // ratio`` points, which is a uniform random
sample, exactly as the reference implementation does. Sampling is therefore deterministic given
the input, identical in the supernet and in every extracted subnet.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.elastic import Sel, strongest_first
from search_spaces.randlanet.elastic import NEG_SLOPE, SharedMLP, halves, pair
from search_spaces.randlanet.geometry import PointGeometry
from search_spaces.randlanet.neighbors import gather_neighbours

XYZ = 3


def _p(active: int, full: int) -> Sel:
    """Prefix selection, or ``None`` when the whole dimension is active."""
    return None if active == full else active


@dataclass(frozen=True)
class SubnetConfig:
    """What varies between subnets: per-layer widths, sub-sampling ratios and neighbour counts
    (all of length ``depth``)."""

    widths: tuple[int, ...]
    ratios: tuple[int, ...]
    ks: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (len(self.widths) == len(self.ratios) == len(self.ks) >= 1):
            raise ValueError("widths, ratios and ks need one entry per layer (at least one)")
        if any(w < 2 or w % 2 for w in self.widths):
            raise ValueError(f"widths must be even and >= 2, got {self.widths}")

    @property
    def depth(self) -> int:
        return len(self.widths)

    def level_sizes(self, num_points: int) -> list[int]:
        """Points at each level: ``[n_0, n_1, ..., n_depth]``."""
        sizes = [num_points]
        for r in self.ratios:
            sizes.append(sizes[-1] // r)
        return sizes


@dataclass(frozen=True)
class NetConfig:
    """Structure of a network: its (largest) subnet, the depths it has bottlenecks for, and the
    fixed parts (input features, classes, stem and head widths, neighbour-search backend)."""

    sub: SubnetConfig
    num_classes: int
    in_features: int = 6
    depths: tuple[int, ...] = ()
    stem: int = 8
    head: tuple[int, ...] = (64, 32)
    knn: str = "kdtree"

    @property
    def all_depths(self) -> tuple[int, ...]:
        return self.depths or (self.sub.depth,)


def attentive_pool(feats: torch.Tensor, fc: SharedMLP, sel: Sel) -> torch.Tensor:
    """Softmax scores over the k neighbours, per channel; weighted sum. (B,N,k,C) -> (B,N,C)."""
    scores = torch.softmax(fc(feats, sel, sel), dim=2)
    return (feats * scores).sum(dim=2)


class DilatedResBlock(nn.Module):
    """Dilated residual block: c_in -> 2*width channels at the same points."""

    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.c_in, self.width = c_in, width
        half = width // 2
        self.mlp1 = SharedMLP(c_in, half)
        self.lse1 = SharedMLP(10, half)
        self.att1_fc = SharedMLP(width, width, bn=False, act=False, bias=False)
        self.att1_mlp = SharedMLP(width, half)
        self.lse2 = SharedMLP(half, half)
        self.att2_fc = SharedMLP(width, width, bn=False, act=False, bias=False)
        self.att2_mlp = SharedMLP(width, width)
        self.mlp2 = SharedMLP(width, 2 * width, act=False)
        self.shortcut = SharedMLP(c_in, 2 * width, act=False)

    def selections(self, width: int, c_in: int) -> dict[str, tuple[Sel, Sel]]:
        """(out, in) channel selections of every layer for an active ``width``/``c_in``: the
        single source of truth for both the supernet forward and weight extraction."""
        w, hw, hc = self.width, self.width // 2, self.c_in
        cat = halves(width, w)
        return {
            "mlp1": (_p(width // 2, hw), _p(c_in, hc)),
            "lse1": (_p(width // 2, hw), None),
            "att1_fc": (cat, cat),
            "att1_mlp": (_p(width // 2, hw), cat),
            "lse2": (_p(width // 2, hw), _p(width // 2, hw)),
            "att2_fc": (cat, cat),
            "att2_mlp": (_p(width, w), cat),
            "mlp2": (_p(2 * width, 2 * w), _p(width, w)),
            "shortcut": (_p(2 * width, 2 * w), _p(c_in, hc)),
        }

    def forward(self, feats: torch.Tensor, neigh: torch.Tensor, position: torch.Tensor,
                width: int | None = None) -> torch.Tensor:
        """``neigh``: (B, N, k) neighbour indices; ``position``: their (B, N, k, 10) relative
        position encoding (``PointGeometry``: both depend on the points only)."""
        width = self.width if width is None else width
        s = self.selections(width, feats.shape[-1])
        f = self.mlp1(feats, *s["mlp1"])
        rel = self.lse1(position, *s["lse1"])
        pooled = attentive_pool(
            torch.cat([gather_neighbours(f, neigh), rel], -1), self.att1_fc, s["att1_fc"][0]
        )
        f = self.att1_mlp(pooled, *s["att1_mlp"])
        rel = self.lse2(rel, *s["lse2"])
        pooled = attentive_pool(
            torch.cat([gather_neighbours(f, neigh), rel], -1), self.att2_fc, s["att2_fc"][0]
        )
        f = self.att2_mlp(pooled, *s["att2_mlp"])
        out = self.mlp2(f, *s["mlp2"]) + self.shortcut(feats, *s["shortcut"])
        return F.leaky_relu(out, NEG_SLOPE)


def skip_widths(widths: tuple[int, ...]) -> list[int]:
    """Channels at each level 0..depth: level 0 (full resolution) and level 1 both carry the
    first block's output; level m carries block m-1's output."""
    return [2 * widths[0]] + [2 * w for w in widths]


def static_config(cfg: NetConfig, sub: SubnetConfig) -> NetConfig:
    """The structure of the static network of ``sub`` cut from a network of structure ``cfg``."""
    return NetConfig(sub=sub, num_classes=cfg.num_classes, in_features=cfg.in_features,
                     stem=cfg.stem, head=cfg.head, knn=cfg.knn)


class RandLANet(nn.Module):
    """RandLA-Net; elastic when run with a ``SubnetConfig`` smaller than its own."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.sub.widths
        self.stem = SharedMLP(cfg.in_features, cfg.stem)
        c_in = [cfg.stem] + [2 * w for w in widths[:-1]]
        self.blocks = nn.ModuleList(
            DilatedResBlock(c, w) for c, w in zip(c_in, widths, strict=True)
        )
        skips = skip_widths(widths)
        self.bottlenecks = nn.ModuleDict(
            {str(d): SharedMLP(skips[d], skips[d]) for d in cfg.all_depths}
        )
        self.decoders = nn.ModuleList(
            SharedMLP(skips[m] + skips[m + 1], skips[m]) for m in range(len(widths))
        )
        head, c = [], skips[0]
        for h in cfg.head:
            head.append(SharedMLP(c, h))
            c = h
        self.head = nn.ModuleList(head)
        self.dropout = nn.Dropout(0.5)
        self.classifier = SharedMLP(c, cfg.num_classes, bn=False, act=False)

    def selections(self, sub: SubnetConfig) -> dict[str, tuple[Sel, Sel]]:
        """(out, in) selections of the non-block layers for ``sub`` (see DilatedResBlock)."""
        full = skip_widths(self.cfg.sub.widths)
        act = skip_widths(sub.widths)
        depth = sub.depth
        out: dict[str, tuple[Sel, Sel]] = {
            f"bottlenecks.{depth}": (_p(act[depth], full[depth]), _p(act[depth], full[depth])),
            "head.0": (None, _p(act[0], full[0])),
        }
        for m in range(depth):
            same = act[m] == full[m] and act[m + 1] == full[m + 1]
            out[f"decoders.{m}"] = (
                _p(act[m], full[m]), None if same else pair(act[m], full[m], act[m + 1])
            )
        return out

    def check(self, sub: SubnetConfig) -> None:
        full = self.cfg.sub
        if sub.depth not in self.cfg.all_depths:
            raise ValueError(f"depth {sub.depth} not in this network's {self.cfg.all_depths}")
        for i, (w, wmax) in enumerate(zip(sub.widths, full.widths, strict=False)):
            if w > wmax:
                raise ValueError(f"width of layer {i} ({w}) exceeds the supernet's {wmax}")

    # ``geometry`` is positional-or-keyword: the TorchScript exporter passes every parameter's
    # default positionally
    def forward(self, x: torch.Tensor, sub: SubnetConfig | None = None,
                geometry: PointGeometry | None = None) -> torch.Tensor:
        """x: (B, N, in_features) with xyz first, points in random order -> (B, N, classes).
        ``geometry``: neighbourhoods of x's points kept from earlier calls on the same points
        (any subnet); without one they are computed for this call only."""
        sub = self.cfg.sub if sub is None else sub
        sel = self.selections(sub)
        if geometry is None:
            geometry = PointGeometry(x[..., :XYZ], backend=self.cfg.knn, keep=False)
        elif geometry.xyz.shape != x[..., :XYZ].shape:
            raise ValueError(f"geometry of {tuple(geometry.xyz.shape)} points for an input of "
                             f"{tuple(x[..., :XYZ].shape)}")
        feats = self.stem(x)
        skips: list[torch.Tensor] = []
        ups: list[torch.Tensor] = []
        n = x.shape[1]
        for i in range(sub.depth):
            n_next = n // sub.ratios[i]
            neigh = geometry.neighbours(n, sub.ks[i])
            f_enc = self.blocks[i](feats, neigh, geometry.position_encoding(n, sub.ks[i]),
                                   sub.widths[i])
            # random sampling: the first n/r points of a randomly ordered cloud; their
            # neighbourhoods are the first rows of ``neigh`` (reference implementation's trick)
            feats = gather_neighbours(f_enc, neigh[:, :n_next]).max(dim=2).values
            if i == 0:
                skips.append(f_enc)
            skips.append(feats)
            ups.append(geometry.upsampling(n, n_next))
            n = n_next
        feats = self.bottlenecks[str(sub.depth)](feats, *sel[f"bottlenecks.{sub.depth}"])
        for m in reversed(range(sub.depth)):
            up = gather_neighbours(feats, ups[m]).squeeze(2)
            feats = self.decoders[m](torch.cat([skips[m], up], -1), *sel[f"decoders.{m}"])
        for j, layer in enumerate(self.head):
            feats = layer(feats, *sel[f"head.{j}"]) if j == 0 else layer(feats)
        return self.classifier(self.dropout(feats))

    # --- extraction ----------------------------------------------------------------------
    def static_config(self, sub: SubnetConfig) -> NetConfig:
        return static_config(self.cfg, sub)

    @torch.no_grad()
    def extract(self, sub: SubnetConfig) -> RandLANet:
        """A standalone RandLANet of ``sub`` with this network's weights copied in."""
        self.check(sub)
        static = RandLANet(self.static_config(sub))
        static.stem.copy_from(self.stem, None, None)
        c_in = self.cfg.stem
        for i in range(sub.depth):
            sels = self.blocks[i].selections(sub.widths[i], c_in)
            for name, (o, s) in sels.items():
                getattr(static.blocks[i], name).copy_from(getattr(self.blocks[i], name), o, s)
            c_in = 2 * sub.widths[i]
        sel = self.selections(sub)
        static.bottlenecks[str(sub.depth)].copy_from(
            self.bottlenecks[str(sub.depth)], *sel[f"bottlenecks.{sub.depth}"]
        )
        for m in range(sub.depth):
            static.decoders[m].copy_from(self.decoders[m], *sel[f"decoders.{m}"])
        for j, layer in enumerate(static.head):
            layer.copy_from(self.head[j], *(sel[f"head.{j}"] if j == 0 else (None, None)))
        static.classifier.copy_from(self.classifier, None, None)
        return static.train(self.training)

    # --- importance reordering ---------------------------------------------------------------
    @torch.no_grad()
    def reorder_by_importance(self) -> None:
        """Sort each block's channel groups by importance so "first k" keeps the strongest
        channels. Producers' rows and every consumer's columns move together, so the function
        of the largest network is unchanged; a stable sort makes a second call a no-op."""
        n = len(self.blocks)
        for i, blk in enumerate(self.blocks):
            half, w = blk.width // 2, blk.width
            # neighbour features, first half of cat 1
            perm = strongest_first(blk.mlp1.importance())
            blk.mlp1.permute_out(perm)
            blk.att1_fc.permute_out(perm)
            blk.att1_fc.permute_in(perm)
            blk.att1_mlp.permute_in(perm)
            # position encoding 1, second half of cat 1
            perm = strongest_first(blk.lse1.importance())
            blk.lse1.permute_out(perm)
            blk.att1_fc.permute_out(perm, half)
            blk.att1_fc.permute_in(perm, half)
            blk.att1_mlp.permute_in(perm, half)
            blk.lse2.permute_in(perm)
            perm = strongest_first(blk.att1_mlp.importance())  # first half of cat 2
            blk.att1_mlp.permute_out(perm)
            blk.att2_fc.permute_out(perm)
            blk.att2_fc.permute_in(perm)
            blk.att2_mlp.permute_in(perm)
            # position encoding 2, second half of cat 2
            perm = strongest_first(blk.lse2.importance())
            blk.lse2.permute_out(perm)
            blk.att2_fc.permute_out(perm, half)
            blk.att2_fc.permute_in(perm, half)
            blk.att2_mlp.permute_in(perm, half)
            perm = strongest_first(blk.att2_mlp.importance())
            assert len(perm) == w
            blk.att2_mlp.permute_out(perm)
            blk.mlp2.permute_in(perm)
            # the block output feeds the next block, the bottleneck of depth i+1 and the
            # decoder skips of level i+1 (and of level 0 for the first block)
            perm = strongest_first(blk.mlp2.importance() + blk.shortcut.importance())
            blk.mlp2.permute_out(perm)
            blk.shortcut.permute_out(perm)
            if i + 1 < n:
                self.blocks[i + 1].mlp1.permute_in(perm)
                self.blocks[i + 1].shortcut.permute_in(perm)
                self.decoders[i + 1].permute_in(perm)
            if str(i + 1) in self.bottlenecks:
                self.bottlenecks[str(i + 1)].permute_in(perm)
            if i == 0:
                self.decoders[0].permute_in(perm)
