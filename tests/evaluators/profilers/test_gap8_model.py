from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluators.profilers.gap8 import calibrate
from evaluators.profilers.gap8.graph import walk
from evaluators.profilers.gap8.model import FITTED, estimate
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


def test_model_shape_terms() -> None:
    g = walk(build("mobilenet_v1", 0.5), torch.zeros(1, 3, 224, 224))
    est = estimate(g, FITTED, calibrate.PUBLISHED_HW)
    assert not est["fits_l2"] and est["l3_bytes"] >= g.params_bytes  # weights stream from L3
    assert {p["bound"] for p in est["per_layer"]} <= {"compute", "dma", "l3"}


def test_calibration_csv_is_validated(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("model,width_mult\nmobilenet_v1,1.0\n")
    with pytest.raises(ValueError, match="missing column"):
        calibrate.load_rows(bad)
    bad.write_text("model,width_mult,input_res,mmac,params_M,latency_ms\nm,wide,224,1,1,1\n")
    with pytest.raises(ValueError, match="bad.csv:2"):
        calibrate.load_rows(bad)


@pytest.mark.slow
@pytest.mark.skipif(not calibrate.DEFAULT_CSV.is_file(), reason="shared GAP8 data absent")
def test_fitted_constants_meet_the_target_on_the_calibration_set() -> None:
    rows = calibrate.load_rows()
    errors = []
    for row in calibrate.walk_rows(rows):
        assert row.graph.macs / 1e6 == pytest.approx(row.mmac, rel=0.01)
        predicted = estimate(row.graph, FITTED, calibrate.PUBLISHED_HW)["latency_ms"]
        errors.append(abs(predicted / row.latency_ms - 1))
    assert sum(errors) / len(errors) <= 0.15
    # re-fitting lands on the shipped constants (the identified ones)
    refit = calibrate.fit(rows)
    assert refit.eta_dense == pytest.approx(FITTED.eta_dense, rel=0.02)
    assert refit.l3_mb_s == pytest.approx(FITTED.l3_mb_s, rel=0.02)


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
