"""A DeepLabV3+ study end to end through the real runner (in-memory store): miou vs macs with
the FMAS fine-tuning stage, and the spec checks of that stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.deeplabv3plus.synth import generate
from service.engine.records import MemoryStore
from service.engine.resolve import SpecError, resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from surrogate.pareto import pareto_mask, to_loss
from tests.search_spaces.test_deeplabv3plus import TINY
from tests.search_spaces.test_table import write_table


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def voc_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    generate(tmp_path / "voc", n_train=8, n_val=8, num_classes=4, min_size=36, max_size=48)
    return tmp_path


def spec(**overrides) -> StudySpec:
    raw = {
        "name": "deeplab",
        "search_space": {"name": "deeplabv3plus",
                         "options": {**TINY, "data_dir": "voc", "subset_size": 4,
                                     "batch_size": 4}},
        "objectives": [{"metric": "miou", "direction": "maximize"},
                       {"metric": "macs", "direction": "minimize"}],
        "strategy": {"name": "random"},
        "budget": {"trials": 5},
        "finetune": {"epochs": 1, "max_candidates": 2},
    }
    raw.update(overrides)
    return StudySpec.model_validate(raw)


def test_study_with_finetune_stage(voc_dir):
    study = resolve_spec(spec())
    store = MemoryStore()
    assert StudyRunner(study, store).run() == "completed"
    trials = store.trials
    assert len(trials) == 5 and all(t.state == "complete" for t in trials)
    tuned = [t for t in trials if "finetune" in t.info]
    assert 1 <= len(tuned) <= 2
    for t in tuned:
        ft = t.info["finetune"]
        assert set(ft["before"]) == {"miou"} and t.values["miou"] == ft["after"]["miou"]
        assert ft["steps"] == 2 and 0 <= ft["miou_full_val_after"] <= 1
    summary = store.extra["finetune"]
    assert sorted(summary["finetuned"]) == [t.number for t in tuned]
    assert summary["progress"] == {"done": len(summary["candidates"]),
                                   "total": len(summary["candidates"])}
    assert [c["number"] for c in summary["per_candidate"]] == summary["candidates"]
    assert all(c["seconds"] > 0 for c in summary["per_candidate"])
    # the front after fine-tuning is over the fine-tuned values only
    loss = to_loss(np.array([[t.values["miou"], t.values["macs"]] for t in tuned]),
                   ["maximize", "minimize"])
    expected = {t.number for t, m in zip(tuned, pareto_mask(loss), strict=True) if m}
    after = {p["number"] for p in summary["front_after"]}
    assert {t.number for t in trials if t.on_front} == expected == after
    assert {p["number"] for p in summary["front_before"]} >= set(summary["candidates"])
    before = {p["number"]: p["values"] for p in summary["front_before"]}
    for t in tuned:
        assert before[t.number]["miou"] == t.info["finetune"]["before"]["miou"]


def test_finetune_needs_a_capable_space_and_an_accuracy_metric(voc_dir):
    write_table(voc_dir / "t.csv")
    with pytest.raises(SpecError, match="cannot fine-tune; spaces that can: .*deeplabv3plus"):
        resolve_spec(StudySpec.model_validate({
            "name": "t", "search_space": {"name": "table", "options": {
                "path": "t.csv", "params": ["depth", "op", "width"],
                "filter": {"dataset": "a"}}},
            "objectives": [{"metric": "acc", "direction": "maximize"},
                           {"metric": "latency_ms", "direction": "minimize"}],
            "budget": {"trials": 3}, "finetune": {"epochs": 1}}))
    with pytest.raises(SpecError, match="needs an accuracy objective"):
        resolve_spec(spec(objectives=[{"metric": "macs", "direction": "minimize"},
                                      {"metric": "params", "direction": "minimize"}]))
    with pytest.raises(Exception, match="epochs"):
        spec(finetune={"epochs": 0})
