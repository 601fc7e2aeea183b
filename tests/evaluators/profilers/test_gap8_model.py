from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluators.profilers.gap8 import calibrate
from evaluators.profilers.gap8.graph import walk
from evaluators.profilers.gap8.model import (
    BOUNDS,
    FITTED,
    OUT_OF_SAMPLE,
    Gap8Hardware,
    estimate,
    plane_passes,
)
from evaluators.profilers.gap8.reference_nets import build


def test_conv_macs_and_weight_bytes() -> None:
    g = walk(nn.Conv2d(3, 8, 3, 1, 1, bias=False).eval(), torch.zeros(1, 3, 16, 16))
    (layer,) = g.layers
    assert layer.kind == "conv"
    assert layer.macs == 16 * 16 * 8 * 3 * 9
    assert layer.weight_bytes == 8 * 3 * 9 + 4 * 8
    assert layer.in_bytes == 3 * 256 and layer.out_bytes == 8 * 256


def test_batch_norm_and_activations_are_fused() -> None:
    plain = walk(nn.Sequential(nn.Conv2d(3, 8, 1)).eval(), torch.zeros(1, 3, 8, 8))
    fused = walk(nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU6(),
                               nn.Dropout()).eval(), torch.zeros(1, 3, 8, 8))
    assert [x.kind for x in fused.layers] == [x.kind for x in plain.layers] == ["pointwise"]
    assert fused.peak_activation_bytes == plain.peak_activation_bytes == (3 + 8) * 64


def test_peak_activation_follows_lifetimes() -> None:
    class Res(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(4, 16, 1), nn.Conv2d(16, 4, 1)

        def forward(self, x):
            return x + self.b(self.a(x))

    g = walk(Res().eval(), torch.zeros(1, 4, 8, 8))
    assert [x.kind for x in g.layers] == ["pointwise", "pointwise", "eltwise"]
    # while b runs, the input (kept for the skip), a's output and b's output are all live
    assert g.peak_activation_bytes == (4 + 16 + 4) * 64

    chain = walk(nn.Sequential(nn.Conv2d(4, 16, 1), nn.Conv2d(16, 4, 1)).eval(),
                 torch.zeros(1, 4, 8, 8))
    assert chain.peak_activation_bytes == (4 + 16) * 64  # the input is dead after layer 0


@pytest.mark.parametrize(
    "name, width, mmac, params_m",
    [("mobilenet_v1", 1.0, 569, 4.24), ("mobilenet_v3_large_minimalistic", 1.0, 209, 3.9)],
)
def test_reference_nets_match_their_published_size(name, width, mmac, params_m) -> None:
    model = build(name, width)
    g = walk(model, torch.zeros(1, 3, 224, 224))
    assert g.macs / 1e6 == pytest.approx(mmac, rel=0.01)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params_m, rel=0.01)


def test_plane_passes_make_small_maps_slower_per_mac() -> None:
    """The same 1x1 conv on a 7x7 map pays 64x as many plane passes per MAC as on a 56x56 map,
    so it runs at a lower MAC rate; a depthwise conv runs one pass per channel."""
    hw = Gap8Hardware()
    small = walk(nn.Conv2d(256, 256, 1, bias=False).eval(), torch.zeros(1, 256, 7, 7))
    large = walk(nn.Conv2d(256, 256, 1, bias=False).eval(), torch.zeros(1, 256, 56, 56))
    assert plane_passes(small.layers[0]) == plane_passes(large.layers[0]) == 256 * 256
    rate = {name: g.macs / estimate(g, FITTED, hw)["per_layer"][0]["compute_cycles"]
            for name, g in (("small", small), ("large", large))}
    assert rate["small"] < 0.6 * rate["large"] and rate["large"] <= FITTED.eta_dense
    dw = walk(nn.Conv2d(32, 32, 3, padding=1, groups=32).eval(), torch.zeros(1, 32, 8, 8))
    assert plane_passes(dw.layers[0]) == 32


def test_model_shape_terms() -> None:
    g = walk(build("mobilenet_v1", 0.5), torch.zeros(1, 3, 224, 224))
    est = estimate(g, FITTED, Gap8Hardware())
    assert not est["fits_l2"] and est["l3_bytes"] >= g.params_bytes  # weights stream from L3
    assert {p["bound"] for p in est["per_layer"]} <= {"compute", "dma", "l3"}


HEADER = "net,family,width_mult,input_shape,latency_ms,cluster_mhz,source\n"


def test_calibration_csv_is_validated(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("model,width_mult\nmobilenet_v1,1.0\n")
    with pytest.raises(ValueError, match="missing column"):
        calibrate.load_rows(bad)
    bad.write_text(HEADER + "mobilenet_v1,v1,wide,1x3x224x224,1,175,table 1\n")
    with pytest.raises(ValueError, match="bad.csv:2"):
        calibrate.load_rows(bad)
    bad.write_text(HEADER + "mobilenet_v1,v1,1.0,1x3x224x224,476,175,\n")
    with pytest.raises(ValueError, match="bad.csv:2: empty 'source'"):
        calibrate.load_rows(bad)
    bad.write_text(HEADER + "mobilenet_v1,v1,1.0,224x224,476,175,table 1\n")
    with pytest.raises(ValueError, match="not NxCxHxW"):
        calibrate.load_rows(bad)


def test_every_calibration_row_has_a_source_and_walks_to_its_published_size() -> None:
    rows = calibrate.walk_rows(calibrate.load_rows())
    assert len(rows) >= 10 and len({r.family for r in rows}) >= 3
    for row in rows:
        assert row.source and ("README" in row.source or "paper" in row.source)
        if row.published_mmac is not None:
            assert row.graph.macs / 1e6 == pytest.approx(row.published_mmac, rel=0.03)


def test_out_of_sample_error_gate() -> None:
    """The CI gate: leave-one-out and leave-one-family-out error of the refitted model, and the
    band every result carries (model.OUT_OF_SAMPLE) is the one measured now, not a stale one."""
    rep = calibrate.report(calibrate.load_rows())
    oos = rep["out_of_sample"]
    assert oos["loo_mape_pct"] == pytest.approx(OUT_OF_SAMPLE["loo_mape_pct"], abs=0.1)
    assert oos["lofo_mape_pct"] == pytest.approx(OUT_OF_SAMPLE["lofo_mape_pct"], abs=0.1)
    assert oos["loo_max_abs_pct"] == pytest.approx(OUT_OF_SAMPLE["loo_max_abs_pct"], abs=0.2)
    assert oos["n_rows"] == OUT_OF_SAMPLE["n_rows"] >= 10 and rep["n_families"] >= 3
    # regression ceilings just above today's figures (7.25%, worst row 19.95%, leave one family
    # out 9.71%); issue 23's targets are a MAPE <= 10% and no row worse than 20%
    assert oos["loo_mape_pct"] <= 8.0
    assert oos["loo_max_abs_pct"] <= 20.5
    assert oos["lofo_mape_pct"] <= 10.5
    # and a published kernel benchmark outside the fit (5x5 conv: 12.8 MAC/cycle, model 11.0)
    assert abs(rep["independent_check"]["error_pct"]) <= 25.0
    # the shipped constants are the fit, and every constant is inside its physical bounds
    for name, value in FITTED.to_dict().items():
        assert rep["constants"][name] == pytest.approx(value, rel=0.01)
        lo, hi, _ = BOUNDS[name]
        assert lo <= value <= hi


def test_resize_and_concat_are_memory_bound_layers_with_their_module() -> None:
    import torch.nn.functional as F

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 1)

        def forward(self, x):
            up = F.interpolate(self.conv(x), scale_factor=4, mode="bilinear")
            return torch.cat([up, up + 1], dim=1)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder = Decoder()

        def forward(self, x):
            return self.decoder(x)

    g = walk(Net().eval(), torch.zeros(1, 8, 8, 8))
    kinds = [x.kind for x in g.layers]
    assert kinds == ["pointwise", "resize", "concat"]
    assert [x.detail.get("module") for x in g.layers] == ["decoder.conv", "decoder", "decoder"]
    est = estimate(g, FITTED, Gap8Hardware())
    resize = est["per_layer"][1]
    # a resize is not free: it reads 4 neighbours per output at the memory-bound rate
    assert resize["compute_cycles"] == pytest.approx(5 * 8 * 32 * 32 / 4.4)
    assert resize["cycles"] > FITTED.layer_overhead_cycles


def test_shared_weights_count_once_and_gathers_read_rows() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 8)
            self.fc = nn.Linear(8, 8, bias=False)

        def forward(self, ids):
            return self.fc(self.fc(self.embed(ids)))

    g = walk(Tied().eval(), torch.zeros(1, 5, dtype=torch.long))
    gather, fc1, fc2 = g.layers
    assert gather.kind == "gather" and gather.param_bytes == 800 and gather.weight_bytes == 40
    assert fc1.weight_bytes == fc2.weight_bytes == 64
    assert (fc1.param_bytes, fc2.param_bytes) == (64, 0)
    assert g.params_bytes == 800 + 64
