from __future__ import annotations

import json

import pytest
import torch

from evaluators.profilers.latency_table import LatencyTable, Prediction, record_ops
from tests.contracts.profiler import TokenNet, image, small_cnn

FAST = {"repeats": 3, "min_sample_ms": 0.5, "max_seconds": 0.05}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_records_leaf_modules_and_functional_ops() -> None:
    calls, n_containers = record_ops(small_cnn(8), image())
    names = [c.label for c in calls]
    # stem (Sequential: conv, bn, relu), dw, relu (functional), pw, add, mean, head
    assert names[:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert "aten::add.Tensor" in names and "aten::mean.dim" in names and names[-1] == "Linear"
    assert n_containers == 2  # the Net and its stem Sequential


def test_table_is_filled_once_and_reused() -> None:
    table = LatencyTable(FAST)
    first = table.predict(small_cnn(8), image())
    assert first.new_entries == len(table.entries) > 0 and first.raw_ms > 0
    again = table.predict(small_cnn(8), image())
    assert again.new_entries == 0 and again.raw_ms == pytest.approx(first.raw_ms)
    deeper = torch.nn.Sequential(small_cnn(8), torch.nn.ReLU(), torch.nn.Linear(10, 3)).eval()
    grown = table.predict(deeper, image())
    assert grown.new_entries == 2  # only the new layers are measured


def test_keyword_models_and_integer_inputs_replay() -> None:
    ids = torch.randint(0, 50, (1, 12))
    pred = LatencyTable(FAST).predict(TokenNet().eval(), {"input_ids": ids,
                                                          "attention_mask": torch.ones(1, 12)})
    assert pred.raw_ms > 0 and "Embedding" in pred.per_op_ms


def test_calibration_and_persistence(tmp_path) -> None:
    table = LatencyTable(FAST)
    refs = [(small_cnn(8), image(32), 5.0), (small_cnn(16), image(48), 9.0)]
    constants = table.calibrate(refs)
    assert constants["scale"] >= 0 and constants["per_call_ms"] >= 0
    assert constants["scale"] + constants["per_call_ms"] > 0
    path = tmp_path / "table.json"
    table.save(path)
    loaded = LatencyTable.load(path)
    assert loaded.entries == table.entries and loaded.per_call_ms == table.per_call_ms
    assert loaded.predict(small_cnn(8), image(32)).new_entries == 0
    with pytest.raises(ValueError, match="at least 2"):
        table.calibrate(refs[:1])


def _prediction(raw_ms: float, lookups: int) -> Prediction:
    return Prediction(latency_ms=raw_ms, raw_ms=raw_ms, n_ops=lookups, n_containers=0,
                      new_entries=0, measuring_s=0.0)


def test_calibration_fits_scale_and_per_call_overhead_by_least_squares() -> None:
    shapes = [(1.0, 100), (2.0, 120), (1.5, 200), (3.0, 150)]
    pairs = [(_prediction(raw, n), 1.2 * raw + 0.01 * n) for raw, n in shapes]
    table = LatencyTable(FAST)
    constants = table.calibrate_from(pairs)
    assert constants["scale"] == pytest.approx(1.2) and constants["per_call_ms"] == pytest.approx(
        0.01)
    pred = _prediction(2.5, 180)
    # what predict() computes from a raw sum and a lookup count
    assert table.scale * pred.raw_ms + table.per_call_ms * 180 == pytest.approx(1.2 * 2.5 + 1.8)


def test_calibration_keeps_constants_nonnegative() -> None:
    # measured falls as lookups grow: an unconstrained fit would give a negative overhead
    pairs = [(_prediction(1.0, 100), 1.5), (_prediction(1.0, 300), 1.0),
             (_prediction(2.0, 100), 2.6)]
    constants = LatencyTable(FAST).calibrate_from(pairs)
    assert constants["scale"] > 0 and constants["per_call_ms"] == 0.0


@pytest.mark.parametrize(
    "content, message",
    [("not json", "cannot read"), (json.dumps({"format": 99}), "not a format-1 table"),
     (json.dumps({"format": 1, "entries": {"x": -1}}), "'entries' must map"),
     (json.dumps({"format": 1, "entries": {}, "scale": "big"}), "'scale' must be a number")],
)
def test_bad_table_files_are_rejected(tmp_path, content, message) -> None:
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        LatencyTable.load(path)
