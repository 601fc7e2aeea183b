"""A small BERT encoder in plain torch that is both the supernet and every extracted subnet.

One class, ``BertNet``, holds full-size weights for its own ``BertShape``. Run with a smaller
``active`` shape it front-slices them (Once-for-All style: the first ``h`` heads, the first ``f``
FFN neurons, ``k`` chosen layers), which is how the supernet evaluates a subnet without
copying. ``extract_subnet`` builds a new ``BertNet`` of the smaller shape and copies the slices,
so the result has no tie to the supernet.

The forward takes only ``input_ids`` ([batch, seq]): the attention mask is ``ids != pad`` and
the token types (second segment after the first ``[SEP]``) are derived from the ids, matching what
the tokenizer would produce, so one tensor is the whole input for profilers and ONNX export.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.base import ArchError
from search_spaces.bert.checkpoint import BertConfig


@dataclass(frozen=True)
class BertShape:
    """Depth and per-layer widths of one (sub)network."""

    heads: tuple[int, ...]  # attention heads of each kept layer
    ffn: tuple[int, ...]  # FFN neurons of each kept layer
    #: which layers of the outer network are kept (default: the first ``len(heads)``)
    layer_ids: tuple[int, ...] | None = None

    @property
    def layers(self) -> int:
        return len(self.heads)

    @property
    def kept(self) -> tuple[int, ...]:
        return self.layer_ids if self.layer_ids is not None else tuple(range(self.layers))

    def static(self) -> BertShape:
        """The same widths as a standalone network (its layers are 0..k-1)."""
        return BertShape(self.heads, self.ffn)

    @classmethod
    def full(cls, cfg: BertConfig) -> BertShape:
        return cls((cfg.num_heads,) * cfg.num_layers, (cfg.intermediate_size,) * cfg.num_layers)

    def check_within(self, outer: BertShape) -> None:
        """Raise ArchError unless this shape is a front slice of ``outer``."""
        if len(self.heads) != len(self.ffn):
            raise ArchError(f"{len(self.heads)} head counts for {len(self.ffn)} FFN widths")
        if not 1 <= self.layers <= outer.layers:
            raise ArchError(f"layers={self.layers}; allowed: 1..{outer.layers}")
        kept = self.kept
        if len(kept) != self.layers or len(set(kept)) != len(kept) or not all(
            0 <= i < outer.layers for i in kept
        ):
            raise ArchError(f"layer_ids={kept} must be {self.layers} distinct layers of "
                            f"0..{outer.layers - 1}")
        for i, h, f in zip(kept, self.heads, self.ffn, strict=True):
            if not 1 <= h <= outer.heads[i]:
                raise ArchError(f"layer {i}: {h} attention heads requested but the layer has "
                                f"{outer.heads[i]}; allowed: 1..{outer.heads[i]}")
            if not 1 <= f <= outer.ffn[i]:
                raise ArchError(f"layer {i}: {f} FFN neurons requested but the layer has "
                                f"{outer.ffn[i]}; allowed: 1..{outer.ffn[i]}")


def _activation(name: str):
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    return lambda x: F.gelu(x, approximate="tanh")  # gelu_new, gelu_pytorch_tanh


class BertLayer(nn.Module):
    """One transformer block with ``heads`` heads of ``head_dim`` and ``ffn`` neurons."""

    def __init__(self, hidden: int, heads: int, head_dim: int, ffn: int, eps: float, act: str):
        super().__init__()
        inner = heads * head_dim
        self.head_dim = head_dim
        self.query = nn.Linear(hidden, inner)
        self.key = nn.Linear(hidden, inner)
        self.value = nn.Linear(hidden, inner)
        self.attn_out = nn.Linear(inner, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = nn.Linear(hidden, ffn)
        self.ffn_out = nn.Linear(ffn, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=eps)
        self.act = _activation(act)

    def forward(
        self,
        x: torch.Tensor,
        bias: torch.Tensor,
        heads: int,
        ffn: int,
        head_mask: torch.Tensor | None = None,
        neuron_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, n, _ = x.shape
        d = self.head_dim
        inner = heads * d

        def proj(lin: nn.Linear) -> torch.Tensor:
            out = F.linear(x, lin.weight[:inner], lin.bias[:inner])
            return out.view(b, n, heads, d).transpose(1, 2)

        q, k, v = proj(self.query), proj(self.key), proj(self.value)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + bias
        ctx = torch.matmul(scores.softmax(dim=-1), v)  # [b, heads, n, d]
        if head_mask is not None:  # only for importance scoring (gradient w.r.t. the mask)
            ctx = ctx * head_mask.view(1, heads, 1, 1)
        ctx = ctx.transpose(1, 2).reshape(b, n, inner)
        attn = F.linear(ctx, self.attn_out.weight[:, :inner], self.attn_out.bias)
        x = self.attn_norm(x + attn)
        inter = self.act(F.linear(x, self.ffn_in.weight[:ffn], self.ffn_in.bias[:ffn]))
        if neuron_mask is not None:
            inter = inter * neuron_mask
        out = F.linear(inter, self.ffn_out.weight[:, :ffn], self.ffn_out.bias)
        return self.ffn_norm(x + out)


class BertNet(nn.Module):
    """BERT embeddings + encoder of a given shape, mean pooling or pooler, optional classifier.

    ``forward(input_ids)`` returns the sentence embedding (mean of the last hidden states over
    real tokens, as sentence-transformers pools MiniLM) or, with a classifier, its logits.
    """

    def __init__(
        self,
        cfg: BertConfig,
        shape: BertShape,
        *,
        sep_id: int,
        pooling: str = "mean",
        num_labels: int = 0,
    ):
        super().__init__()
        if pooling not in ("mean", "pooler"):
            raise ValueError(f"pooling={pooling!r}; allowed: 'mean', 'pooler'")
        self.cfg, self.shape, self.sep_id, self.pooling = cfg, shape, sep_id, pooling
        h = cfg.hidden_size
        self.word_embeddings = nn.Embedding(cfg.vocab_size, h)
        self.position_embeddings = nn.Embedding(cfg.max_positions, h)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, h)
        self.embed_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(
            BertLayer(h, heads, cfg.head_dim, ffn, cfg.layer_norm_eps, cfg.hidden_act)
            for heads, ffn in zip(shape.heads, shape.ffn, strict=True)
        )
        self.pooler = nn.Linear(h, h) if pooling == "pooler" else None
        self.classifier = nn.Linear(h, num_labels) if num_labels else None

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        active: BertShape | None = None,
        masks: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden states [b, n, h] and the float attention mask [b, n]."""
        active = active or self.shape
        b, n = input_ids.shape
        real = input_ids != self.cfg.pad_token_id
        positions = torch.arange(n, device=input_ids.device).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        if self.cfg.type_vocab_size > 1:
            is_sep = (input_ids == self.sep_id).long()
            # segment B starts after the first [SEP] (which itself stays in segment A)
            types = ((torch.cumsum(is_sep, dim=1) - is_sep) > 0) & real
            x = x + self.token_type_embeddings(types.long())
        else:
            x = x + self.token_type_embeddings(torch.zeros_like(input_ids))
        x = self.embed_norm(x)
        mask = real.to(x.dtype)
        bias = ((1.0 - mask) * torch.finfo(x.dtype).min).view(b, 1, 1, n)
        for j, i in enumerate(active.kept):
            hm, nm = masks[j] if masks is not None else (None, None)
            x = self.layers[i](x, bias, active.heads[j], active.ffn[j], hm, nm)
        return x, mask

    @staticmethod
    def mean_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        summed = (x * mask.unsqueeze(-1)).sum(dim=1)
        return summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)

    def head(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooler is not None:
            pooled = torch.tanh(self.pooler(x[:, 0]))
        else:
            pooled = self.mean_pool(x, mask)
        return self.classifier(pooled) if self.classifier is not None else pooled

    def forward(self, input_ids: torch.Tensor, active: BertShape | None = None) -> torch.Tensor:
        x, mask = self.hidden_states(input_ids, active)
        return self.head(x, mask)

    def embed(self, input_ids: torch.Tensor, active: BertShape | None = None) -> torch.Tensor:
        """Mean-pooled sentence embedding whatever the head (for fidelity)."""
        return self.mean_pool(*self.hidden_states(input_ids, active))


def build_like(net: BertNet, shape: BertShape) -> BertNet:
    """A freshly initialised ``BertNet`` with ``net``'s settings and the given shape."""
    num_labels = net.classifier.out_features if net.classifier is not None else 0
    return BertNet(net.cfg, shape.static(), sep_id=net.sep_id, pooling=net.pooling,
                   num_labels=num_labels)


@torch.no_grad()
def extract_subnet(net: BertNet, shape: BertShape) -> BertNet:
    """A standalone ``BertNet`` of ``shape`` holding copies of ``net``'s front slices."""
    shape.check_within(net.shape)
    # allocate without random initialisation (every tensor is overwritten below): on MiniLM the
    # initialisers cost as much as the copies
    with torch.device("meta"):
        sub = build_like(net, shape)
    sub = sub.to_empty(device="cpu")
    src = net.state_dict()
    kept = shape.kept
    for key, dst in sub.state_dict().items():
        if key.startswith("layers."):  # subnet layer j is supernet layer kept[j]
            j, rest = key[len("layers."):].split(".", 1)
            key = f"layers.{kept[int(j)]}.{rest}"
        # every tensor is a front slice of the supernet's tensor along each axis
        piece = src[key][tuple(slice(0, s) for s in dst.shape)]
        dst.copy_(piece)
    return sub.eval()
