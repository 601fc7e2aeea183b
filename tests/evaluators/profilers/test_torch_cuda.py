"""``torch-cuda``: the ProfilerContract where torch sees a GPU (skipped, saying why, where it
does not), and on every machine its settings, registration and the error without CUDA."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from evaluators.profilers import PROFILERS
from evaluators.profilers.base import ProfilerError
from evaluators.profilers.devices import DeviceCatalog, cuda_present
from evaluators.profilers.torch_cuda import TorchCudaProfiler
from tests.contracts.profiler import ProfilerContract, image, small_cnn

HAS_CUDA = torch.cuda.is_available()
NO_CUDA_REASON = ("torch-cuda measures on an NVIDIA GPU and torch.cuda.is_available() is False "
                  "on this machine; the contract runs where there is one (tests/gpu too)")
FAST = {"warmup": 2, "repeats": 5, "min_sample_ms": 0.5}


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA_REASON)
class TestTorchCuda(ProfilerContract):
    @pytest.fixture
    def profiler(self) -> TorchCudaProfiler:
        return TorchCudaProfiler(FAST)

    def test_bigger_model_is_slower(self, profiler: TorchCudaProfiler) -> None:
        # the contract's pair (8 vs 48 channels at 32/96 px) is launch-bound on a GPU: both
        # take the same few kernel launches; here the big one does ~10^4x the work
        small = profiler.measure(small_cnn(4), image(32)).latency_ms
        big = profiler.measure(small_cnn(256), image(1024)).latency_ms
        assert big > small


def test_registered_with_its_settings():
    assert PROFILERS.get("torch-cuda") is TorchCudaProfiler
    s = TorchCudaProfiler({"batch": 16, "precision": "bfloat16", "compile": "max-autotune",
                           "gpu": 1, "expect_gpu": "NVIDIA H100 80GB HBM3"}).settings
    assert (s.batch, s.precision, s.compile, s.gpu) == (16, "bfloat16", "max-autotune", 1)
    assert s.expect_gpu == "NVIDIA H100 80GB HBM3"
    for bad, field in (({"precision": "int8"}, "precision"), ({"batch": 0}, "batch"),
                       ({"compile": "tensorrt"}, "compile"), ({"repeats": 1}, "repeats")):
        with pytest.raises(ValidationError, match=field):
            TorchCudaProfiler(bad)


@pytest.mark.skipif(HAS_CUDA, reason="checks a machine without CUDA")
def test_without_cuda_measuring_is_a_clear_error_naming_what_works_here():
    model = small_cnn()
    with pytest.raises(ProfilerError, match=r"CUDA is not available.*torch-cpu, onnxruntime-cpu"):
        TorchCudaProfiler(FAST).measure(model, image())
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_the_builtin_cuda_device_exists_only_with_a_gpu():
    catalog = DeviceCatalog()
    assert ("cuda" in catalog.names()) == cuda_present() == HAS_CUDA
    if HAS_CUDA:
        assert catalog.get("cuda").kind == "torch-cuda"
    else:
        with pytest.raises(KeyError, match=r"'cuda' \(the built-in 'cuda' device is there only "
                                            r"where torch sees a GPU\); known devices: cpu"):
            catalog.get("cuda")
