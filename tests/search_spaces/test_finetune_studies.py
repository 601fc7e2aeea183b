"""The ``finetune`` stage through the real runner (in-memory store) on each supernet space:
DeepLabV3+ (synthetic VOC), RandLA-Net (synthetic scenes) and BERT (the stdlib-topics task),
with dataset pruning by success rate, an even spread of candidates and a time budget."""

from __future__ import annotations

import pytest
import torch

from search_spaces.bert.corpus import write_stdlib_topic_task
from search_spaces.deeplabv3plus.synth import generate
from search_spaces.randlanet.synthetic import write_dataset
from service.engine.records import MemoryStore
from service.engine.resolve import resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from tests.search_spaces.test_deeplabv3plus import TINY as DEEPLAB_TINY
from tests.search_spaces.test_randlanet import TINY as RANDLA_TINY


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    monkeypatch.setenv("PARETONAS_CACHE_DIR", str(tmp_path / "cache"))


def _run(raw: dict) -> MemoryStore:
    store = MemoryStore()
    assert StudyRunner(resolve_spec(StudySpec.model_validate(raw)), store).run() == "completed"
    return store


def _check_pruned_stage(store: MemoryStore, accuracy: str) -> dict:
    """What every pruned fine-tuning stage must show: the subsets derived from the probe's
    rates, every candidate trained on the chosen one, both fronts, progress and seconds."""
    summary, pruning = store.extra["finetune"], store.extra["finetune_subsets"]
    assert summary["state"] == "done"
    rates_total = pruning["train_set_size"]
    assert sum(pruning["success_histogram"].values()) == rates_total
    sizes = [s["size"] for s in pruning["subsets"]]
    assert sizes == sorted(sizes, reverse=True)  # nested, largest (the winning ticket) first
    for s in pruning["subsets"]:
        below = sum(c for r, c in pruning["success_histogram"].items()
                    if float(r) <= s["max_rate"])
        assert s["size"] == below == len(s["indices"]) and s["max_rate"] < 1
    chosen = next((s for s in pruning["subsets"] if s["max_rate"] == pruning["chosen"]), None)
    tuned = [t for t in store.trials if "finetune" in t.info]
    assert sorted(summary["finetuned"]) == sorted(t.number for t in tuned) != []
    for t in tuned:
        ft = t.info["finetune"]
        assert ft["train_examples"] == (chosen["size"] if chosen else rates_total)
        assert ft["train_set_size"] == rates_total
        assert t.values[accuracy] == ft["after"][accuracy] and ft["seconds"] > 0
    assert summary["progress"]["done"] == len(summary["per_candidate"])
    after = {p["number"] for p in summary["front_after"]}
    assert after <= set(summary["finetuned"])  # fine-tuned values only
    assert {t.number for t in store.trials if t.on_front} == after
    assert set(summary["candidates"]) <= {p["number"] for p in summary["front_before"]}
    return summary


def test_deeplab_study_fine_tunes_an_even_spread_on_a_pruned_set(tmp_path):
    generate(tmp_path / "voc", n_train=12, n_val=6, num_classes=4, min_size=36, max_size=48)
    store = _run({
        "name": "deeplab-ft",
        "search_space": {"name": "deeplabv3plus", "options": {
            **DEEPLAB_TINY, "data_dir": "voc", "subset_size": 4, "batch_size": 4}},
        "objectives": [{"metric": "miou", "direction": "maximize"},
                       {"metric": "macs", "direction": "minimize"}],
        "strategy": {"name": "random"}, "budget": {"trials": 6},
        "finetune": {"epochs": 1, "max_candidates": 3,
                     "prune": {"probe_epochs": 2, "min_examples": 2,
                               "score_threshold": 0.5}},
    })
    summary = _check_pruned_stage(store, "miou")
    front = sorted(summary["front_before"], key=lambda p: (-p["values"]["miou"], p["number"]))
    if len(front) >= 2:  # both ends of the front come first
        assert summary["candidates"][:2] == [front[0]["number"], front[-1]["number"]]
    assert len(summary["candidates"]) == min(3, len(front))


def test_randlanet_study_fine_tunes_every_front_member(tmp_path):
    write_dataset(tmp_path / "scenes", n_train=6, n_val=2, points=300, seed=0)
    store = _run({
        "name": "randla-ft",
        "search_space": {"name": "randlanet", "options": {
            **RANDLA_TINY, "data": "scenes", "val_scenes": 2, "finetune_scenes": 6,
            "finetune_batch": 2}},
        "objectives": [{"metric": "miou", "direction": "maximize"},
                       {"metric": "macs", "direction": "minimize"}],
        "strategy": {"name": "random"}, "budget": {"trials": 5},
        "finetune": {"epochs": 1, "prune": {"probe_epochs": 2, "min_examples": 1,
                                            "score_threshold": 0.5}},
    })
    summary = _check_pruned_stage(store, "miou")
    assert len(summary["candidates"]) == summary["front_size"]  # every front member


def test_bert_study_fine_tunes_on_the_topics_task_within_a_budget(tmp_path):
    write_stdlib_topic_task(tmp_path / "topics", limit=200)
    store = _run({
        "name": "bert-ft",
        "search_space": {"name": "bert", "options": {
            "seq_len": 16, "num_texts": 8, "importance_examples": 4, "eval_batch_size": 16,
            "task": "topics", "max_train_examples": 48, "max_eval_examples": 16,
            "layer_choices": [2, 4], "reorder": False}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"},
                       {"metric": "params", "direction": "minimize"}],
        "strategy": {"name": "random"}, "budget": {"trials": 4}, "seed": 1,
        "finetune": {"epochs": 1, "lr": 1e-4, "budget_seconds": 1e-3,
                     "prune": {"probe_epochs": 2, "min_examples": 4}},
    })
    summary = _check_pruned_stage(store, "accuracy")
    # the budget is spent by the probe: only the first candidate (it always runs) is done
    if len(summary["candidates"]) > 1:
        assert summary["stopped_by_budget"]["after"] == 1
    assert len(summary["per_candidate"]) == 1


class CrashingStore(MemoryStore):
    """A memory store whose worker dies after saving the first fine-tuned candidate."""

    crash_after = 1

    def update_trials(self, records, *, best_hypervolume):
        super().update_trials(records, best_hypervolume=best_hypervolume)
        if any("finetune" in r.info for r in records):
            self.crash_after -= 1
            if self.crash_after == 0:
                raise RuntimeError("worker died")


def test_an_interrupted_stage_resumes_keeping_the_candidates_already_tuned(tmp_path):
    generate(tmp_path / "voc", n_train=8, n_val=4, num_classes=4, min_size=36, max_size=48)
    raw = {
        "name": "resume",
        "search_space": {"name": "deeplabv3plus", "options": {
            **DEEPLAB_TINY, "data_dir": "voc", "subset_size": 4, "batch_size": 4}},
        "objectives": [{"metric": "miou", "direction": "maximize"},
                       {"metric": "params", "direction": "minimize"}],
        "strategy": {"name": "random"}, "budget": {"trials": 6}, "seed": 2,
        "finetune": {"epochs": 1},
    }
    store = CrashingStore()
    with pytest.raises(RuntimeError, match="worker died"):
        StudyRunner(resolve_spec(StudySpec.model_validate(raw)), store).run()
    first = [t for t in store.trials if "finetune" in t.info]
    assert len(first) == 1 and "stage_done" not in first[0].info["finetune"]
    tuned_value = first[0].values["miou"]
    hv_before = store.extra["finetune"]["hypervolume_before"]
    assert StudyRunner(resolve_spec(StudySpec.model_validate(raw)), store).run() == "completed"
    summary = store.extra["finetune"]
    resumed = [c for c in summary["per_candidate"] if c.get("resumed")]
    assert [c["number"] for c in resumed] == [first[0].number]
    again = next(t for t in store.trials if t.number == first[0].number)
    assert again.values["miou"] == tuned_value  # not fine-tuned twice
    assert len(summary["per_candidate"]) == summary["front_size"] >= 2
    # the resumed stage's "before" is the front before any tuning, not with the tuned value
    assert summary["hypervolume_before"] == pytest.approx(hv_before)
    assert all(t.info["finetune"]["stage_done"] for t in store.trials if "finetune" in t.info)
    # a third run finds the stage done and leaves it alone
    assert StudyRunner(resolve_spec(StudySpec.model_validate(raw)), store).run() == "completed"
    assert store.extra["finetune"] is summary
