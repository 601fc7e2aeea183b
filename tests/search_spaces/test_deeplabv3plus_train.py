"""Supernet training: sandwich steps change the weights, checkpoints load into the space, an
interrupted run resumes to exactly the uninterrupted result, and bad input is reported."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from search_spaces.deeplabv3plus import train as train_cli
from search_spaces.deeplabv3plus.checkpoint import read_checkpoint
from search_spaces.deeplabv3plus.data import VOCSegmentation
from search_spaces.deeplabv3plus.space import DeepLabSpace
from search_spaces.deeplabv3plus.synth import generate
from search_spaces.deeplabv3plus.training import TrainConfig, train_supernet
from tests.search_spaces.test_deeplabv3plus import TINY


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    return generate(root / "voc", n_train=8, n_val=6, num_classes=4, min_size=36, max_size=48)


def _train(voc, out, *, epochs, resume=False, progress=None):
    space = DeepLabSpace(TINY)
    dataset = VOCSegmentation(voc, "train", num_classes=4)
    cfg = TrainConfig(epochs=epochs, batch_size=4, num_random=1, crop=32, seed=1)
    summary = train_supernet(space, dataset, out, cfg, resume=resume, progress=progress)
    return space, summary


def _interrupt_at_step_3(step, _total, _loss):
    if step == 3:
        raise KeyboardInterrupt


def test_training_checkpoints_and_resumes_exactly(voc, tmp_path, monkeypatch):
    before = DeepLabSpace(TINY).supernet.state_dict()
    full, summary = _train(voc, tmp_path / "full.pt", epochs=2)
    assert summary["steps"] == 4 and np.isfinite(summary["last_loss"])
    changed = [k for k, v in full.supernet.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, before[k])]
    assert len(changed) > 100
    with pytest.raises(KeyboardInterrupt):
        _train(voc, tmp_path / "part.pt", epochs=2, progress=_interrupt_at_step_3)
    assert read_checkpoint(tmp_path / "part.pt")["epoch"] == 1
    resumed, summary = _train(voc, tmp_path / "part.pt", epochs=2, resume=True)
    assert summary["steps"] == 4
    for k, v in full.supernet.state_dict().items():
        torch.testing.assert_close(resumed.supernet.state_dict()[k], v, msg=k)
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    space = DeepLabSpace({**TINY, "checkpoint": "full.pt"})
    arch = space.sample(np.random.default_rng(0))
    x = space.example_input(arch)
    with torch.inference_mode():
        torch.testing.assert_close(space.extract(arch)(x), full.extract(arch)(x))
    assert space.checkpoint_info["supernet_trained"] is True  # so it was not re-ordered


def _args(**kw):
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    argv = []
    for k, v in kw.items():
        flag = f"--{k.replace('_', '-')}"
        if v is True:
            argv.append(flag)
        else:
            argv += [flag, *(map(str, v) if isinstance(v, list) else [str(v)])]
    return parser.parse_args(argv)


def test_cli_reports_bad_input(tmp_path, capsys, voc):
    assert train_cli.main(_args(data=tmp_path / "nope", out=tmp_path / "o.pt")) == 2
    assert "does not exist" in capsys.readouterr().out
    assert train_cli.main(_args(data=voc, out=tmp_path / "o.pt", resolutions=[8])) == 2
    assert "--resolutions" in capsys.readouterr().out
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    code = train_cli.main(_args(data=voc, out=tmp_path / "o.pt", init=tmp_path / "other.pt",
                                num_classes=4, width_mult=0.25, resolutions=[32]))
    assert code == 2 and "unexpected keys (1): fc.weight" in capsys.readouterr().out


def test_torchvision_backbone_initialises_the_supernet(tmp_path, voc, capsys):
    from torchvision.models import mobilenet_v2

    tv = mobilenet_v2(width_mult=0.25, num_classes=10)
    torch.save(tv.state_dict(), tmp_path / "mbv2.pth")
    args = _args(data=voc, out=tmp_path / "o.pt", init_backbone=tmp_path / "mbv2.pth",
                 num_classes=4, width_mult=0.25, aspp_channels=16, low_level_channels=8,
                 decoder_channels=16, resolutions=[32], epochs=1, batch_size=4, no_progress=True)
    assert train_cli.main(args) == 0, capsys.readouterr().out
    assert read_checkpoint(tmp_path / "o.pt")["epoch"] == 1
