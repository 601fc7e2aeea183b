"""The compute device setting (``paretonas_core/compute.py``): syntax, precedence, resolution on
this machine, and that the CPU path is the identity (so CPU results are unchanged)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from pydantic import ValidationError

from paretonas_core.compute import (
    CPU,
    DEVICE_ENV,
    Compute,
    ComputeError,
    check_device,
    choose_device,
    resolve_compute,
    resolve_device,
    worker_device,
)
from service.engine.spec import ComputeSpec

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


@pytest.mark.parametrize("text", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_accepted_device_names(text):
    assert check_device(text) == text


@pytest.mark.parametrize("text", ["gpu", "CUDA", "cuda:", "cuda:x", "mps", "", "cpu:0", " cpu"])
def test_bad_device_names_say_what_is_allowed(text):
    with pytest.raises(ComputeError, match=r"allowed: auto, cpu, cuda, cuda:N"):
        check_device(text, where="compute.device")


@pytest.mark.parametrize(("study", "worker", "chosen"), [
    (None, None, "auto"),
    ("auto", "cpu", "cpu"),          # the worker decides for auto studies
    ("auto", "cuda:1", "cuda:1"),
    ("cpu", "cuda:1", "cpu"),        # a study's explicit device wins...
    ("cuda:0", "cuda:1", "cuda:0"),
    ("cuda", "cuda:1", "cuda:1"),    # ...but a bare cuda takes the worker's GPU
    ("cuda", "auto", "cuda"),
    ("cuda", "cpu", "cuda"),
])
def test_study_and_worker_precedence(study, worker, chosen):
    assert choose_device(study, worker) == chosen


def test_worker_default_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert worker_device() == "auto"
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert worker_device() == "cpu"
    monkeypatch.setenv(DEVICE_ENV, "gpu0")
    with pytest.raises(ComputeError, match=DEVICE_ENV):
        worker_device()


@no_cuda
def test_auto_is_the_cpu_here_and_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert resolve_device("auto") == "cpu"
    assert resolve_compute() == Compute("cpu")
    for asked in ("cuda", "cuda:1"):
        with pytest.raises(ComputeError, match=r"is_available\(\) is False.*allowed here: "
                                               r"auto, cpu"):
            resolve_device(asked)
    monkeypatch.setenv(DEVICE_ENV, "cuda")  # a worker told to use a GPU it does not have
    with pytest.raises(ComputeError, match="asks for CUDA"):
        resolve_compute("auto")


def test_the_cpu_path_is_the_identity():
    model = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    assert CPU.module(model) is model and all(p.device.type == "cpu" for p in model.parameters())
    assert CPU.to(x) is x
    pair = (x, x)
    assert CPU.to(pair) is pair
    assert isinstance(CPU.autocast(), contextlib.nullcontext)
    assert CPU.amp_dtype is None and Compute("cpu", amp=True).amp_dtype is None
    assert CPU.steps().scaler is None
    assert CPU.describe() == {"device": "cpu", "amp": None}


def test_plain_steps_are_backward_and_step():
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 1)
    b = torch.nn.Linear(3, 1)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 3)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    a(x).pow(2).mean().backward()
    opt_a.step()
    steps = CPU.steps()
    steps.backward(b(x).pow(2).mean())
    steps.step(opt_b)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_prefetched_batches_keep_their_order_and_errors():
    items = [(torch.full((2,), float(i)), i) for i in range(7)]
    got = list(Compute("cpu", prefetch=3).batches(iter(items)))
    assert [i for _, i in got] == list(range(7))
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(got, items, strict=True))

    def failing():
        yield 1
        raise OSError("image 2 unreadable")

    with pytest.raises(OSError, match="image 2 unreadable"):
        list(Compute("cpu", prefetch=2).batches(failing()))
    # stopping early ends the producer (it would otherwise block on a full queue forever)
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    it = Compute("cpu", prefetch=2).batches(endless())
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert len(produced) < 10


def test_study_spec_field():
    assert ComputeSpec().model_dump() == {"device": "auto", "amp": True, "prefetch": 0}
    assert ComputeSpec(device="cuda:1", amp=False).device == "cuda:1"
    with pytest.raises(ValidationError, match=r"'gpu' is not a compute device; allowed: auto"):
        ComputeSpec(device="gpu")
    with pytest.raises(ValidationError, match="prefetch"):
        ComputeSpec(prefetch=-1)
    with pytest.raises(ValidationError, match="extra"):
        ComputeSpec(devices="cpu")
