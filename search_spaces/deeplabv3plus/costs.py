"""Analytic costs of a DeepLabV3+ subnet (no model is built, so ``cost`` is microseconds).

* ``macs``: multiply-accumulates of every convolution (BN, activations, resizes and adds are
  not counted, the usual convention).
* ``params``: every parameter (conv weights and biases, BN scale and shift); tests check it equals
  the static model's ``numel`` sum and that ``macs`` equals a hook-based count.
* ``peak_activation_bytes``: the largest sum of live tensors at any op, at int8 (1 byte per
  element), with BN/ReLU fused into the conv before them. Live = the op's input and output plus
  tensors held for later: a residual block's input, the low-level features until the decoder,
  the ASPP input and branch outputs until their concat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from search_spaces.deeplabv3plus.structure import LOW_LEVEL_LAST, NetConfig


def _out_size(size: int, stride: int) -> int:
    # "same" padding: out = floor((size - 1) / stride) + 1
    return (size - 1) // stride + 1


@dataclass
class _Tally:
    macs: int = 0
    params: int = 0
    peak: int = 0
    trace: list[tuple[str, int]] = field(default_factory=list)

    def conv(self, cin: int, cout: int, k: int, out_hw: int, *, groups: int = 1,
             bias: bool = False, bn: bool = True) -> None:
        self.macs += out_hw * out_hw * cout * (cin // groups) * k * k
        self.params += cout * (cin // groups) * k * k
        self.params += (cout if bias else 0) + (2 * cout if bn else 0)

    def live(self, what: str, elements: int) -> None:
        self.peak = max(self.peak, elements)
        self.trace.append((what, elements))


def subnet_costs(cfg: NetConfig) -> dict[str, float]:
    """macs, params, params_bytes (int8), peak_activation_bytes (int8) of ``cfg``."""
    t = _Tally()
    hw = cfg.resolution
    x = 3 * hw * hw
    hw = _out_size(hw, 2)
    t.conv(3, cfg.stem_out, 3, hw)
    t.live("stem", x + cfg.stem_out * hw * hw)
    c = cfg.stem_out
    low_elems = 0
    for spec in cfg.blocks:
        if spec.index > LOW_LEVEL_LAST and not low_elems:
            low_elems = c * hw * hw  # the low-level features stay live until the decoder
        held = low_elems
        inp = c * hw * hw
        res_hold = inp if spec.residual else 0
        if spec.expand:
            t.conv(spec.inp, spec.hidden, 1, hw)
            t.live(f"block{spec.index}.expand", held + inp + spec.hidden * hw * hw)
            h_in = spec.hidden * hw * hw
        else:
            h_in = inp
        out_hw = _out_size(hw, spec.stride)
        t.conv(spec.hidden, spec.hidden, 3, out_hw, groups=spec.hidden)
        h_out = spec.hidden * out_hw * out_hw
        t.live(f"block{spec.index}.dw", held + res_hold + h_in + h_out)
        t.conv(spec.hidden, spec.oup, 1, out_hw)
        out = spec.oup * out_hw * out_hw
        t.live(f"block{spec.index}.project", held + res_hold + h_out + out)
        if spec.residual:
            t.live(f"block{spec.index}.add", held + inp + out + out)
        hw, c = out_hw, spec.oup
    # decoder: project the low-level features first (VainF's order), then the ASPP.
    low_hw = _out_size(_out_size(cfg.resolution, 2), 2)
    high = c * hw * hw
    lc, ac = cfg.low_level_channels, cfg.aspp_channels
    t.conv(cfg.low_level_in, lc, 1, low_hw)
    low_proj = lc * low_hw * low_hw
    t.live("head.project", high + low_elems + low_proj)
    branch = ac * hw * hw
    done = 0
    t.conv(c, ac, 1, hw)
    t.live("aspp.conv1x1", low_proj + high + branch)
    done += branch
    for _rate in cfg.aspp_rates:
        t.conv(c, ac, 3, hw)
        t.live("aspp.atrous", low_proj + high + done + branch)
        done += branch
    t.conv(c, ac, 1, 1)
    t.live("aspp.pool", low_proj + high + done + branch)
    done += branch
    t.live("aspp.concat", low_proj + 2 * done)
    n_branches = 2 + len(cfg.aspp_rates)
    t.conv(n_branches * ac, ac, 1, hw)
    t.live("aspp.project", low_proj + done + branch)
    up = ac * low_hw * low_hw
    t.live("decoder.upsample", low_proj + branch + up)
    t.live("decoder.concat", 2 * (low_proj + up))
    t.conv(lc + ac, cfg.decoder_channels, 3, low_hw)
    dec = cfg.decoder_channels * low_hw * low_hw
    t.live("decoder.conv3x3", low_proj + up + dec)
    t.conv(cfg.decoder_channels, cfg.num_classes, 1, low_hw, bias=True, bn=False)
    logits = cfg.num_classes * low_hw * low_hw
    t.live("decoder.classifier", dec + logits)
    t.live("upsample", logits + cfg.num_classes * cfg.resolution * cfg.resolution)
    return {
        "macs": float(t.macs),
        "params": float(t.params),
        "params_bytes": float(t.params),
        "peak_activation_bytes": float(t.peak),
    }
