"""``--device`` on the command line: workers and supernet trainers check it on this machine
before doing anything, and say what is allowed."""

from __future__ import annotations

import json

import pytest
import torch

from search_spaces.deeplabv3plus.synth import generate
from tests.service.test_client_cli import cli

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


@no_cuda
def test_a_worker_asked_for_a_gpu_it_lacks_refuses_to_start(tmp_path):
    db = f"sqlite:///{tmp_path / 'w.db'}"
    out = cli("worker", "--device", "cuda", "--exit-when-idle", PARETONAS_DATABASE_URL=db)
    assert out.returncode == 2
    assert "--device: 'cuda' asks for CUDA" in out.stderr and "allowed here: auto, cpu" in (
        out.stderr)
    out = cli("worker", "--exit-when-idle", PARETONAS_DATABASE_URL=db, PARETONAS_DEVICE="cuda:0")
    assert out.returncode == 2 and "PARETONAS_DEVICE: 'cuda:0' asks for CUDA" in out.stderr


def test_a_malformed_device_is_refused(tmp_path):
    db = f"sqlite:///{tmp_path / 'w.db'}"
    out = cli("worker", "--device", "gpu", "--exit-when-idle", PARETONAS_DATABASE_URL=db)
    assert out.returncode == 2
    assert "'gpu' is not a compute device; allowed: auto, cpu, cuda, cuda:N" in out.stderr
    assert "Traceback" not in out.stderr


@no_cuda
def test_supernet_training_on_cpu_reports_its_device_and_refuses_cuda(tmp_path):
    generate(tmp_path / "voc", n_train=4, n_val=2, num_classes=3, min_size=36, max_size=40)
    common = ["supernet", "train", "deeplabv3plus", "--data", str(tmp_path / "voc"),
              "--out", str(tmp_path / "sn.pt"), "--epochs", "1", "--batch-size", "2",
              "--max-steps-per-epoch", "1", "--num-classes", "3", "--width-mult", "0.25",
              "--aspp-channels", "8", "--low-level-channels", "8", "--decoder-channels", "8",
              "--resolutions", "32", "--no-progress", "--threads", "1"]
    out = cli(*common, "--device", "cuda")
    assert out.returncode == 2 and "--device: 'cuda' asks for CUDA" in out.stdout
    out = cli(*common, "--device", "auto")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["compute"] == {"device": "cpu", "amp": None} and summary["steps"] == 1
    out = cli("supernet", "train", "randlanet", "--data", str(tmp_path), "--out",
              str(tmp_path / "r.safetensors"), "--device", "cuda:0")
    assert out.returncode == 2 and "asks for CUDA" in out.stderr
