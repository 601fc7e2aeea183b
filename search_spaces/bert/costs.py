"""Analytic costs of a BERT subnet for one sequence of ``seq_len`` tokens."""

from __future__ import annotations

from search_spaces.bert.checkpoint import BertConfig
from search_spaces.bert.model import BertShape


def subnet_costs(
    cfg: BertConfig, shape: BertShape, seq_len: int, *, num_labels: int = 0, pooler: bool = False
) -> dict[str, float]:
    """macs, params (exactly the extracted module's parameter count), params_bytes at int8 and
    an estimate of the peak live activation bytes at int8 (the largest of, per layer, the
    attention block's residual + q/k/v + scores and the FFN block's residual + intermediate +
    output)."""
    h, d, n = cfg.hidden_size, cfg.head_dim, seq_len
    params = (cfg.vocab_size + cfg.max_positions + cfg.type_vocab_size) * h + 2 * h
    macs = 0
    peak = 2 * n * h  # embedding sum and its normalised copy
    for heads, ffn in zip(shape.heads, shape.ffn, strict=True):
        inner = heads * d
        params += 3 * (h * inner + inner) + inner * h + h + 2 * h  # q, k, v, out, norm
        params += h * ffn + ffn + ffn * h + h + 2 * h  # ffn in, out, norm
        macs += 3 * n * h * inner + 2 * heads * n * n * d + n * inner * h + 2 * n * h * ffn
        peak = max(peak, n * h + 3 * n * inner + heads * n * n, 2 * n * h + n * ffn)
    if pooler:
        params += h * h + h
        macs += h * h
    if num_labels:
        params += h * num_labels + num_labels
        macs += h * num_labels
    return {
        "macs": float(macs),
        "params": float(params),
        "params_bytes": float(params),
        "peak_activation_bytes": float(peak),
    }
