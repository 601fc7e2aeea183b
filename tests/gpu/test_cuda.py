"""The CUDA paths, run where torch sees a GPU (``pytest -m gpu tests/gpu``); skipped, saying
why, everywhere else (this project's CI has no GPU).

Each test runs the same work on the CPU and on the GPU and checks that the GPU gives the CPU's
answer (exactly where the maths allows, else within float32/autocast tolerance), that models
and results end up where they should, and that training actually trains there.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from evaluators.profilers.torch_cuda import TorchCudaProfiler
from paretonas_core.compute import CPU, Compute, resolve_compute
from search_spaces.base import EvalContext
from search_spaces.deeplabv3plus.space import DeepLabSpace
from search_spaces.deeplabv3plus.synth import generate
from search_spaces.deeplabv3plus.training import TrainConfig, train_model, train_supernet
from search_spaces.randlanet.space import RandLANetSpace
from search_spaces.randlanet.synthetic import write_dataset
from search_spaces.randlanet.train import sandwich_plan, train_steps
from tests.contracts.profiler import image, small_cnn
from tests.search_spaces.test_deeplabv3plus import TINY as DEEPLAB
from tests.search_spaces.test_randlanet import TINY as RANDLA

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs CUDA: torch.cuda.is_available() is False on this machine"),
]


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    monkeypatch.delenv("PARETONAS_DEVICE", raising=False)
    generate(tmp_path / "voc", n_train=8, n_val=8, num_classes=4, min_size=36, max_size=48)
    write_dataset(tmp_path / "scenes", n_train=2, n_val=2, points=600, seed=3)
    return tmp_path


def gpu(amp: bool = False) -> Compute:
    return resolve_compute("cuda", amp=amp)


def test_auto_is_the_gpu_and_its_name_is_reported():
    compute = resolve_compute("auto", worker="auto")
    assert compute.device == f"cuda:{torch.cuda.current_device()}"
    info = compute.describe()
    assert info["gpu"] == torch.cuda.get_device_name() and info["amp"] in ("bfloat16", "float16")
    assert Compute(compute.device, amp=False).describe()["amp"] is None


def test_deeplab_evaluation_on_the_gpu_gives_the_cpu_answer(data):
    space = DeepLabSpace({**DEEPLAB, "data_dir": "voc", "subset_size": 6, "batch_size": 4,
                          "bn_recalibration_batches": 1})
    for arch in (space.smallest(), space.largest()):
        cpu = space.evaluate(arch, ["miou", "pixel_accuracy"])
        fp32 = space.evaluate(arch, ["miou", "pixel_accuracy"],
                              context=EvalContext(compute=gpu()))
        amp = space.evaluate(arch, ["miou", "pixel_accuracy"],
                             context=EvalContext(compute=gpu(amp=True)))
        for m in cpu:  # a few pixels may flip class between kernels (TF32 convs) / precisions
            assert fp32[m] == pytest.approx(cpu[m], abs=0.03)
            assert amp[m] == pytest.approx(cpu[m], abs=0.08)
    # the supernet stays on the CPU: subnets extracted for the CPU profilers come from it
    assert next(space.supernet.parameters()).device.type == "cpu"


def test_deeplab_finetuning_and_supernet_training_on_the_gpu(data, tmp_path):
    space = DeepLabSpace({**DEEPLAB, "data_dir": "voc", "subset_size": 4, "batch_size": 4})
    values, details = space.finetune(space.smallest(), ["miou"], epochs=2,
                                     context=EvalContext(compute=gpu(amp=True)))
    assert 0 <= values["miou"] <= 1 and details["compute"]["device"].startswith("cuda")
    model = gpu().module(space.extract(space.largest()))
    stats = train_model(model, space.train.dataset, resolution=48, epochs=3, batch_size=4,
                        compute=Compute(gpu().device, prefetch=2))
    assert stats["steps"] == 6 and stats["last_loss"] == stats["last_loss"]  # finite, ran
    assert next(model.parameters()).device.type == "cuda"

    fresh = DeepLabSpace({**DEEPLAB, "data_dir": "voc"})
    out = tmp_path / "sn.pt"
    summary = train_supernet(fresh, fresh.train.dataset, out,
                             TrainConfig(epochs=2, batch_size=4, max_steps_per_epoch=2),
                             compute=gpu(amp=True))
    assert summary["steps"] == 4 and summary["compute"]["device"].startswith("cuda")
    # the checkpoint loads on a CPU-only machine and evaluates there
    reloaded = DeepLabSpace({**DEEPLAB, "data_dir": "voc", "checkpoint": "sn.pt",
                             "subset_size": 4})
    assert next(reloaded.supernet.parameters()).device.type == "cpu"
    assert 0 <= reloaded.evaluate(reloaded.smallest(), ["miou"])["miou"] <= 1
    # resuming on the GPU continues from the saved optimiser state
    again = train_supernet(fresh, fresh.train.dataset, out,
                           TrainConfig(epochs=3, batch_size=4, max_steps_per_epoch=2),
                           resume=True, compute=gpu(amp=True))
    assert again["steps"] == 6


def test_randlanet_evaluation_and_training_on_the_gpu(data):
    space = RandLANetSpace({**RANDLA, "data": "scenes", "val_scenes": 2, "calibrate_bn": 2})
    for arch in (space.smallest(), space.largest()):
        cpu = space.evaluate(arch, ["miou", "oa"])
        fp32 = space.evaluate(arch, ["miou", "oa"], context=EvalContext(compute=gpu()))
        for m in cpu:
            assert fp32[m] == pytest.approx(cpu[m], abs=0.03)
    # the sampled scenes keep one copy per device, and their neighbourhoods there
    sample = space.kept_samples()[0][2]
    x, geometry = sample.on(gpu())
    assert x.device.type == "cuda" and geometry.entries > 0
    assert next(space.net.parameters()).device.type == "cpu"

    torch.manual_seed(0)
    trainee = RandLANetSpace(RANDLA)
    before = {k: v.clone() for k, v in trainee.net.state_dict().items()}
    losses = train_steps(trainee.net, space.train_scenes(2), sandwich_plan(trainee, 1),
                         steps=5, batch=2, lr=0.01, seed=0, compute=gpu(amp=True))
    assert len(losses) == 5 and all(v == v for v in losses)  # finite
    after = trainee.net.state_dict()
    assert after["stem.weight"].device.type == "cuda"
    assert not torch.equal(after["stem.weight"].cpu(), before["stem.weight"])


def test_bert_fidelity_and_finetuning_on_the_gpu():
    from search_spaces.bert.space import BertSpace

    space = BertSpace({"seq_len": 32, "num_texts": 32, "max_train_examples": 32,
                       "importance_examples": 16})
    small = space.smallest()
    cpu = space.evaluate(small, ["fidelity"])["fidelity"]
    on_gpu = space.evaluate(small, ["fidelity"], context=EvalContext(compute=gpu()))["fidelity"]
    assert on_gpu == pytest.approx(cpu, abs=1e-3)
    assert space.evaluate(space.largest(), ["fidelity"],
                          context=EvalContext(compute=gpu(amp=True)))["fidelity"] > 0.99
    values, details = space.finetune(small, ["fidelity"], epochs=2,
                                     context=EvalContext(compute=gpu(amp=True)))
    assert values["fidelity"] > cpu - 0.05 and details["compute"]["device"].startswith("cuda")
    assert next(space.runtime.net.parameters()).device.type == "cpu"


def test_float16_training_goes_through_a_grad_scaler():
    compute = gpu(amp=True)
    steps = compute.steps()
    if compute.amp_dtype is torch.bfloat16:
        assert steps.scaler is None  # bf16 has float32's range: no loss scaling
    from paretonas_core.compute import Steps

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 1)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaled = Steps(torch.amp.GradScaler("cuda"))
    x, y = torch.randn(64, 16, device="cuda"), torch.randn(64, 1, device="cuda")
    first = None
    for _ in range(50):
        opt.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16):
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        scaled.backward(loss)
        scaled.step(opt)
        first = first if first is not None else float(loss)
    assert float(loss) < first


def test_torch_cuda_profiler_repeats_and_records_the_gpu():
    profiler = TorchCudaProfiler({"warmup": 10, "repeats": 20})
    model = small_cnn(32)
    results = [profiler.measure(model, image(224)) for _ in range(5)]
    latencies = [r.latency_ms for r in results]
    assert statistics.pstdev(latencies) / statistics.mean(latencies) < 0.2
    details = results[0].details
    assert details["gpu"] == torch.cuda.get_device_name() and details["timer"] == "cuda_event"
    assert details["inner_calls"] >= 1 and next(model.parameters()).device.type == "cpu"
    half = TorchCudaProfiler({"warmup": 5, "repeats": 5, "precision": "float16", "batch": 4})
    assert half.measure(model, image(224)).details["batch"] == 4
    from evaluators.profilers.base import ProfilerError
    from evaluators.profilers.devices import DeviceCatalog

    builtin = DeviceCatalog().get("cuda")
    assert builtin.settings["expect_gpu"] == torch.cuda.get_device_name(0)
    with pytest.raises(ProfilerError, match="measures on a 'Imaginary GPU'"):
        TorchCudaProfiler({"expect_gpu": "Imaginary GPU"}).measure(model, image())


def test_cpu_compute_on_a_gpu_machine_stays_on_the_cpu(data):
    space = DeepLabSpace({**DEEPLAB, "data_dir": "voc", "subset_size": 4, "batch_size": 4})
    arch = space.smallest()
    assert space.evaluate(arch, ["miou"], context=EvalContext(compute=CPU)) == space.evaluate(
        arch, ["miou"])
