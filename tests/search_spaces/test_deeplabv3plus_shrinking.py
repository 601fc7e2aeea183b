"""Supernet training schedules: the subnets of each step (sandwich, Once-for-All progressive
shrinking phases, largest only), phase bookkeeping, and training runs that use them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.base import SpaceError
from search_spaces.deeplabv3plus.checkpoint import read_checkpoint
from search_spaces.deeplabv3plus.data import VOCSegmentation
from search_spaces.deeplabv3plus.shrinking import (
    dim_group,
    phase_epochs,
    phase_of,
    step_archs,
)
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


def test_sandwich_is_largest_smallest_and_random():
    space = DeepLabSpace(TINY)
    archs = step_archs(space, np.random.default_rng(0), schedule="sandwich", phase=0,
                       num_random=3)
    assert archs[0] == space.largest() and archs[1] == space.smallest() and len(archs) == 5
    again = [space.sample(np.random.default_rng(0)) for _ in range(1)]
    assert archs[2] == again[0]  # the random ones are the generator's next samples


def test_progressive_phases_open_groups_one_at_a_time():
    space = DeepLabSpace(TINY)
    dims = space.dimensions()
    rng = np.random.default_rng(1)
    assert step_archs(space, rng, schedule="progressive", phase=0, num_random=2) == [
        space.largest()]
    opened: list[set[str]] = []
    for phase in (1, 2, 3):
        archs = step_archs(space, rng, schedule="progressive", phase=phase, num_random=40)
        assert archs[0] == space.largest()
        varied = {dim_group(n) for a in archs for n, v in a.items() if v != dims[n].largest}
        opened.append(varied)
    assert opened[0] == {"depth", "resolution"}
    assert opened[1] == {"depth", "resolution", "expand"}
    assert opened[2] == {"depth", "resolution", "expand", "width"}
    # the phase's smallest subnet: its elastic groups at their smallest, the others largest
    smallest = step_archs(space, rng, schedule="progressive", phase=1, num_random=0)[1]
    for name, value in smallest.items():
        expected = dims[name].smallest if dim_group(name) in ("depth", "resolution") else (
            dims[name].largest)
        assert value == expected, name


def test_largest_schedule_and_unknown_schedule():
    space = DeepLabSpace(TINY)
    rng = np.random.default_rng(0)
    assert step_archs(space, rng, schedule="largest", phase=3, num_random=2) == [space.largest()]
    with pytest.raises(SpaceError, match="allowed: sandwich, progressive, largest"):
        step_archs(space, rng, schedule="ofa", phase=0, num_random=2)


def test_phase_epochs_split_and_validation():
    assert phase_epochs(10, None) == [2, 2, 2, 4]
    assert phase_epochs(4, [1, 1, 1, 1]) == [1, 1, 1, 1]
    assert [phase_of(e, [1, 0, 2, 1]) for e in range(4)] == [0, 2, 2, 3]
    with pytest.raises(SpaceError, match="summing to the epochs"):
        phase_epochs(4, [1, 1, 1])
    with pytest.raises(SpaceError, match="summing to the epochs"):
        phase_epochs(4, [2, 2, 2, 2])


def _train(voc, out, **cfg):
    space = DeepLabSpace(TINY)
    dataset = VOCSegmentation(voc, "train", num_classes=4)
    config = TrainConfig(batch_size=4, num_random=1, crop=32, seed=1, **cfg)
    return space, train_supernet(space, dataset, out, config)


def test_progressive_training_differs_from_sandwich_and_checkpoints(voc, tmp_path):
    prog, summary = _train(voc, tmp_path / "p.pt", epochs=4, schedule="progressive",
                           phase_epochs=[1, 1, 1, 1])
    assert summary["steps"] == 8 and np.isfinite(summary["last_loss"])
    sand, _ = _train(voc, tmp_path / "s.pt", epochs=4)
    a, b = prog.supernet.state_dict(), sand.supernet.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    state = read_checkpoint(tmp_path / "p.pt")
    assert state["supernet_trained"] is True
    assert state["train_config"]["schedule"] == "progressive"


def test_largest_only_is_a_plain_model_reordered_on_loading(voc, tmp_path, monkeypatch):
    plain, _ = _train(voc, tmp_path / "plain.pt", epochs=1, schedule="largest")
    assert read_checkpoint(tmp_path / "plain.pt")["supernet_trained"] is False
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    loaded = DeepLabSpace({**TINY, "checkpoint": "plain.pt"})
    x = loaded.example_input(loaded.largest())
    with torch.inference_mode():
        # reordering permutes channels consistently: the full network computes the same thing
        torch.testing.assert_close(loaded.extract(loaded.largest())(x),
                                   plain.extract(plain.largest())(x), rtol=1e-2, atol=2e-3)
    before = plain.supernet.state_dict()
    after = loaded.supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before
               if before[k].is_floating_point())  # but the channels moved


def test_bad_phase_epochs_are_refused_before_training(voc, tmp_path):
    with pytest.raises(SpaceError, match="phase_epochs"):
        _train(voc, tmp_path / "x.pt", epochs=4, schedule="progressive", phase_epochs=[1, 1])


def test_cli_schedule_and_phase_epochs(voc, tmp_path, capsys):
    import argparse

    from search_spaces.deeplabv3plus import train as train_cli

    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    common = ["--data", str(voc), "--num-classes", "4", "--width-mult", "0.25",
              "--aspp-channels", "16", "--low-level-channels", "8", "--decoder-channels", "16",
              "--resolutions", "32", "--batch-size", "4", "--no-progress"]
    bad = parser.parse_args([*common, "--out", str(tmp_path / "b.pt"), "--epochs", "4",
                             "--schedule", "progressive", "--phase-epochs", "1", "1", "1", "2"])
    assert train_cli.main(bad) == 2
    assert "phase_epochs must be 4 non-negative integers summing to the epochs (4)" in (
        capsys.readouterr().out)
    good = parser.parse_args([*common, "--out", str(tmp_path / "g.pt"), "--epochs", "1",
                              "--schedule", "largest"])
    assert train_cli.main(good) == 0
    assert read_checkpoint(tmp_path / "g.pt")["train_config"]["schedule"] == "largest"
