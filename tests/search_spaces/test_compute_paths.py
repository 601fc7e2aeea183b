"""The compute setting on a CPU-only machine: a study or an evaluation asked to run on ``cpu``
or ``auto`` gives exactly the numbers it gave without the setting; prefetched fine-tuning
batches train the same model; a CUDA request is a clear error, not a crash."""

from __future__ import annotations

import pytest
import torch

from paretonas_core.compute import CPU, Compute, ComputeError, resolve_compute
from search_spaces.base import EvalContext
from search_spaces.deeplabv3plus.space import DeepLabSpace
from search_spaces.deeplabv3plus.synth import generate
from search_spaces.deeplabv3plus.training import train_model
from search_spaces.randlanet.space import RandLANetSpace
from search_spaces.randlanet.synthetic import write_dataset
from search_spaces.randlanet.train import fixed_plan, train_steps
from service.engine.records import MemoryStore
from service.engine.resolve import resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from tests.search_spaces.test_deeplabv3plus import TINY as DEEPLAB
from tests.search_spaces.test_randlanet import TINY as RANDLA

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    monkeypatch.delenv("PARETONAS_DEVICE", raising=False)
    generate(tmp_path / "voc", n_train=8, n_val=6, num_classes=4, min_size=36, max_size=48)
    write_dataset(tmp_path / "scenes", n_train=2, n_val=2, points=500, seed=3)
    return tmp_path


def _deeplab_spec(compute: dict | None) -> StudySpec:
    raw = {
        "name": "deeplab",
        "search_space": {"name": "deeplabv3plus", "options": {
            **DEEPLAB, "data_dir": "voc", "subset_size": 4, "batch_size": 4,
            "bn_recalibration_batches": 1}},
        "objectives": [{"metric": "miou", "direction": "maximize"},
                       {"metric": "macs", "direction": "minimize"}],
        "strategy": {"name": "random"},
        "budget": {"trials": 3},
        "finetune": {"epochs": 1, "max_candidates": 1},
    }
    if compute is not None:
        raw["compute"] = compute
    return StudySpec.model_validate(raw)


def _run(spec: StudySpec) -> list[tuple[dict, dict]]:
    store = MemoryStore()
    assert StudyRunner(resolve_spec(spec), store).run() == "completed"
    return [(t.arch, t.values) for t in store.trials]


def test_a_study_on_cpu_or_auto_gives_the_numbers_it_gave_without_the_setting(data):
    plain = _run(_deeplab_spec(None))
    assert _run(_deeplab_spec({"device": "cpu"})) == plain
    assert _run(_deeplab_spec({"device": "auto", "amp": False, "prefetch": 2})) == plain


@no_cuda
def test_a_cuda_study_on_this_machine_fails_saying_why(data):
    store = MemoryStore()
    runner = StudyRunner(resolve_spec(_deeplab_spec({"device": "cuda"})), store)
    with pytest.raises(ComputeError, match=r"compute.device: 'cuda' asks for CUDA.*allowed "
                                           r"here: auto, cpu"):
        runner.run()


def test_deeplab_evaluation_and_prefetched_finetuning_match_the_cpu_path(data):
    space = DeepLabSpace({**DEEPLAB, "data_dir": "voc", "subset_size": 4, "batch_size": 4,
                          "bn_recalibration_batches": 1})
    arch = space.smallest()
    plain = space.evaluate(arch, ["miou", "pixel_accuracy"])
    auto = EvalContext(compute=resolve_compute("auto"))
    assert auto.compute == CPU
    assert space.evaluate(arch, ["miou", "pixel_accuracy"], context=auto) == plain

    def tuned(compute: Compute) -> tuple[dict, dict]:
        model = space.extract(arch)
        stats = train_model(model, space.train.dataset, resolution=32, epochs=2, batch_size=4,
                            seed=3, compute=compute)
        return stats, model.state_dict()

    (a, wa), (b, wb) = tuned(CPU), tuned(Compute("cpu", prefetch=2))
    assert a["steps"] == b["steps"] == 4 and a["last_loss"] == b["last_loss"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_randlanet_evaluation_and_training_match_the_cpu_path(data):
    space = RandLANetSpace({**RANDLA, "data": "scenes", "val_scenes": 2, "calibrate_bn": 1})
    arch = space.largest()
    plain = space.evaluate(arch, ["miou", "oa"])
    assert space.evaluate(arch, ["miou", "oa"], context=EvalContext(compute=CPU)) == plain
    scene = space.val_scenes()[0]
    sample = space.sampled(scene, 128, 0)
    x, geometry = sample.on(CPU)
    assert x is sample.input and geometry is sample.geometry and not sample.views

    def trained(compute: Compute | None) -> list[float]:
        torch.manual_seed(0)
        model = space.build_static(arch)
        sub, n = space.subnet(arch)
        kwargs = {} if compute is None else {"compute": compute}
        return train_steps(model, space.train_scenes(2), fixed_plan(sub, n), steps=3, batch=2,
                           lr=0.01, seed=1, **kwargs)

    assert trained(CPU) == trained(None)
