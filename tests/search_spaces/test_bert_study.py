"""The BERT space through the service: a spec resolved, run in-process, and bad options refused
with the field's location (what the REST API turns into a 422)."""

from __future__ import annotations

import pytest
import torch

from service.engine.resolve import SpecError, resolve_spec
from service.engine.spec import StudySpec
from service.interfaces.commands.run import run_in_process


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("PARETONAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))


def _spec(**options) -> StudySpec:
    return StudySpec.model_validate({
        "name": "minilm",
        "search_space": {"name": "bert", "options": {"seq_len": 16, "num_texts": 8,
                                                      "importance_examples": 4, **options}},
        "objectives": [{"metric": "fidelity", "direction": "maximize"},
                       {"metric": "latency_ms", "device": "cpu", "direction": "minimize"}],
        "constraints": [{"metric": "params", "max": 3e7}],
        "budget": {"trials": 3}, "seed": 3,
    })


def test_study_runs_end_to_end_on_minilm():
    result = run_in_process(_spec(), progress=False)
    trials = result["trials"]
    assert [t["state"] for t in trials] == ["complete"] * 3
    for t in trials:
        assert 0.0 < t["values"]["latency_ms@cpu"]
        assert -1.0 <= t["values"]["fidelity"] <= 1.0 + 1e-6
        assert t["values"]["params"] <= 22_565_376
    assert result["pareto"]


def test_bad_options_name_the_field():
    with pytest.raises(SpecError) as err:
        resolve_spec(_spec(head_choices=[4, 24]))
    assert err.value.errors[0]["loc"] == ["search_space", "options"]
    assert "head_choices: [24] outside 1..12" in str(err.value)
    with pytest.raises(SpecError, match="search_space.options.seq_len"):
        resolve_spec(_spec(seq_len=2))
    with pytest.raises(SpecError, match="has no metric 'accuracy'; allowed: fidelity"):
        resolve_spec(_spec().model_copy(update={"objectives": [
            *_spec().objectives[:1],
            _spec().objectives[0].model_copy(update={"metric": "accuracy"})]}))
