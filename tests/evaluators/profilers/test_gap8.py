from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from evaluators.profilers.base import ProfilerError
from evaluators.profilers.gap8 import gvsoc
from evaluators.profilers.gap8.profiler import Gap8Profiler
from tests.contracts.profiler import ProfilerContract, image, small_cnn

FAKE = str(Path(__file__).parent / "fixtures" / "fake_gvsoc.py")


def fake(mode: str = "ok", **settings) -> Gap8Profiler:
    return Gap8Profiler({
        "mode": "gvsoc", "command": [sys.executable, FAKE, "{onnx}", "--mode", mode],
        "layer_details": True, **settings,
    })


class TestGap8Analytic(ProfilerContract):
    deterministic = True

    @pytest.fixture
    def profiler(self) -> Gap8Profiler:
        return Gap8Profiler()


class TestGap8Gvsoc(ProfilerContract):
    deterministic = True

    @pytest.fixture
    def profiler(self) -> Gap8Profiler:
        return fake()


def test_analytic_reports_memory_and_layers() -> None:
    r = Gap8Profiler({"layer_details": True}).measure(small_cnn(8), image(32))
    # stem 3x3 (8*27 int8 + 8 int32 biases), dw (8*9 + 32), pw (64 + 32), fc (80 + 40)
    assert r.metrics["params_bytes"] == 8 * 27 + 32 + 8 * 9 + 32 + 64 + 32 + 80 + 40
    assert r.metrics["fits_l2"] == 1.0
    kinds = [layer["kind"] for layer in r.details["layers"]]
    assert kinds == ["conv", "depthwise", "pointwise", "eltwise", "pool", "linear"]
    assert r.latency_ms == pytest.approx(r.metrics["cycles"] / 175e3)


def test_a_faster_clock_is_proportionally_faster() -> None:
    slow = Gap8Profiler({"cluster_mhz": 90}).measure(small_cnn(), image())
    fast = Gap8Profiler({"cluster_mhz": 180}).measure(small_cnn(), image())
    assert slow.metrics["cycles"] == fast.metrics["cycles"]
    assert slow.latency_ms == pytest.approx(2 * fast.latency_ms)


def test_a_small_l2_budget_moves_weights_to_l3() -> None:
    fits = Gap8Profiler().measure(small_cnn(32), image(64))
    tight = Gap8Profiler({"l2_budget_kb": 4}).measure(small_cnn(32), image(64))
    assert fits.metrics["fits_l2"] == 1.0 and tight.metrics["fits_l2"] == 0.0
    assert tight.details["l3_bytes"] > 0 == fits.details["l3_bytes"]
    assert tight.latency_ms > fits.latency_ms


# --- the GVSOC hook against the fake simulator ---------------------------------------------
def test_gvsoc_parses_total_and_layers() -> None:
    r = fake().measure(small_cnn(8), image())
    layers = r.details["layers"]
    assert len(layers) == 4  # stem, dw, pw convs and the classifier
    assert r.metrics["cycles"] == sum(layer["cycles"] for layer in layers)
    assert r.latency_ms == pytest.approx(r.metrics["cycles"] / 175e3)
    assert r.details["analytic_latency_ms"] > 0


def test_gvsoc_parses_old_sdk_format() -> None:
    new = fake("ok").measure(small_cnn(8), image())
    old = fake("old").measure(small_cnn(8), image())
    assert old.metrics["cycles"] == new.metrics["cycles"]


@pytest.mark.parametrize(
    "mode, message",
    [("crash", "exited with status 3"), ("garbage", "no 'Total"),
     ("app-fail", "application exited with status 1")],
)
def test_gvsoc_failures_carry_the_simulator_output(mode, message) -> None:
    with pytest.raises(ProfilerError, match=message) as info:
        fake(mode).measure(small_cnn(8), image())
    assert "launching gvsoc" in str(info.value)  # the simulator's last lines


def test_gvsoc_timeout_kills_the_process_group() -> None:
    t0 = time.monotonic()
    with pytest.raises(ProfilerError, match="timed out after 2 s"):
        fake("hang", timeout_s=2).measure(small_cnn(8), image())
    assert time.monotonic() - t0 < 30


def test_gvsoc_missing_program() -> None:
    p = Gap8Profiler({"mode": "gvsoc", "command": ["/nonexistent/gvsoc-flow", "{onnx}"]})
    with pytest.raises(ProfilerError, match="cannot start"):
        p.measure(small_cnn(8), image())


def test_gvsoc_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="needs a 'command'"):
        Gap8Profiler({"mode": "gvsoc"})
    with pytest.raises(ValidationError, match="unknown placeholder"):
        Gap8Profiler({"mode": "gvsoc", "command": ["run", "{model}"]})
    p = Gap8Profiler({"mode": "gvsoc", "command": "make run MODEL={onnx}"})  # a string is split
    assert p.settings.command == ["make", "run", "MODEL={onnx}"]


def test_parser_edge_cases() -> None:
    text = ("  conv 1: Cycles: 10, Cyc%: 50.0%, Operations: 20, Op%: 50.0%, "
            "Operations/Cycle: 2.0\nTotal: Cycles: 20, Operations: 40, Operations/Cycle: 2\n")
    res = gvsoc.parse_output(text)
    assert res.total_cycles == 20 and res.layers[0]["name"] == "conv 1"
    with pytest.raises(ProfilerError, match="total cycles is 0"):
        gvsoc.parse_output("Total: Cycles: 0, Operations: 0")


def test_profiler_walks_keyword_models_with_attention() -> None:
    from tests.contracts.profiler import TokenNet

    ids = torch.zeros(1, 12, dtype=torch.long)
    inputs = {"input_ids": ids, "attention_mask": torch.ones(1, 12)}
    r = Gap8Profiler({"layer_details": True}).measure(TokenNet().eval(), inputs)
    kinds = [layer["kind"] for layer in r.details["layers"]]
    assert kinds.count("matmul") == 2 and "gather" in kinds and "norm" in kinds


def test_by_default_only_the_costliest_layers_are_kept() -> None:
    import torchvision

    model = torchvision.models.mobilenet_v2(width_mult=0.35).eval()
    r = Gap8Profiler().measure(model, image(64))
    top = r.details["top_layers"]
    assert "layers" not in r.details and len(top) == 10 and r.details["n_layers"] > 50
    assert [x["cycles"] for x in top] == sorted((x["cycles"] for x in top), reverse=True)
    assert sum(r.details["bound_counts"].values()) == r.details["n_layers"]


def test_input_shape_fixes_the_profiled_resolution() -> None:
    small = Gap8Profiler().measure(small_cnn(8), image(32))
    fixed = Gap8Profiler({"input_shape": [1, 3, 64, 64]}).measure(small_cnn(8), image(32))
    assert fixed.metrics["cycles"] > small.metrics["cycles"]
    assert fixed.metrics["peak_activation_bytes"] == 4 * small.metrics["peak_activation_bytes"]


# --- uncertainty band and the int8 path -------------------------------------------------------
def test_analytic_results_carry_the_out_of_sample_band() -> None:
    from evaluators.profilers.gap8.model import OUT_OF_SAMPLE

    r = Gap8Profiler().measure(small_cnn(8), image())
    assert r.metrics["latency_err_pct"] == OUT_OF_SAMPLE["loo_mape_pct"] > 0
    band = r.details["uncertainty"]
    assert band["applies"] and band["latency_err_max_pct"] == OUT_OF_SAMPLE["loo_max_abs_pct"]
    assert "leave-one-out" in band["basis"]
    tuned = Gap8Profiler({"eta_dense": 12.0}).measure(small_cnn(8), image())
    assert tuned.details["uncertainty"]["applies"] is False  # not the calibrated model


def test_gvsoc_int8_path_hands_the_flow_a_qdq_graph() -> None:
    # the fake flow refuses float weights when asked for int8, as an int8-only import would
    with pytest.raises(ProfilerError, match="exited with status 4") as info:
        fake("ok", command=[sys.executable, FAKE, "{onnx}", "--require-int8"]).measure(
            small_cnn(8), image())
    assert "expected an int8 QDQ graph" in str(info.value)
    p = Gap8Profiler({
        "mode": "gvsoc", "command": [sys.executable, FAKE, "{onnx}", "--require-int8"],
        "onnx_format": "int8_qdq", "calibration_samples": 3,
    })
    calib = [image() + i for i in range(5)]
    r = p.measure(small_cnn(8), image(), calibration_inputs=calib)
    assert r.details["onnx_format"] == "int8_qdq" and r.details["calibration_inputs"] == 3
    assert r.details["calibration_source"] == "given" and r.metrics["cycles"] > 0
    alone = p.measure(small_cnn(8), image())
    assert alone.details["calibration_source"] == "example input only"


def test_qdq_export_quantises_weights_per_channel() -> None:
    import io

    import onnx

    from evaluators.profilers.onnx_export import export_onnx, input_feed

    x = image()
    data = gvsoc.qdq_onnx(export_onnx(small_cnn(8), x), [input_feed(x), input_feed(x * 2)])
    graph = onnx.load(io.BytesIO(data)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") >= 1 and ops.count("DequantizeLinear") >= 4
    zero_points = {i.name: i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    assert zero_points  # int8, not uint8, as GAP8's symmetric kernels expect
    with pytest.raises(ProfilerError, match="no calibration inputs"):
        gvsoc.qdq_onnx(data, [])
