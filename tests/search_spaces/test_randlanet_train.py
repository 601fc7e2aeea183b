"""RandLA-Net supernet trainer: the CLI module trains, saves a loadable checkpoint, and refuses
bad arguments with a message."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from search_spaces.randlanet import synthetic, train
from search_spaces.randlanet.space import RandLANetSpace
from search_spaces.randlanet.synthetic import write_dataset

TINY_ARGS = ["--max-widths", "8,16", "--depths", "1,2", "--num-points", "128,256",
             "--ratios", "4,2", "--ks", "4,8", "--batch", "2", "--random-subnets", "1"]


def _parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_sandwich_training_lowers_the_loss_and_checkpoint_loads(tmp_path, monkeypatch, capsys):
    write_dataset(tmp_path / "scenes", n_train=4, n_val=1, points=400, seed=0)
    args = _parse(train, ["--data", str(tmp_path / "scenes"), "--out",
                          str(tmp_path / "sn.safetensors"), "--steps", "25", *TINY_ARGS])
    assert train.main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["last_loss"] < summary["first_loss"]
    assert 0 <= summary["miou_largest"] <= 1
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    space = RandLANetSpace({"checkpoint": "sn.safetensors", "num_points": [128, 256],
                            "ratios": [4, 2], "ks": [4, 8], "depths": [1, 2],
                            "data": "scenes", "val_scenes": 1})
    assert space.net_config.sub.widths == (8, 16)
    got = space.evaluate(space.largest(), ["miou"])["miou"]
    assert got == pytest.approx(summary["miou_largest"], abs=1e-4)


def test_bad_arguments_are_refused(tmp_path, capsys):
    args = _parse(train, ["--data", str(tmp_path / "none"), "--out", str(tmp_path / "x.pt")])
    assert train.main(args) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    args = _parse(train, ["--data", str(tmp_path / "none"), "--out",
                          str(tmp_path / "x.safetensors")])
    assert train.main(args) == 2
    assert "no 'train' folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(train, ["--data", "d", "--out", "o", "--max-widths", "a,b"])


def test_train_plan_mixes_largest_smallest_and_random():
    space = RandLANetSpace({"max_widths": [8, 16], "num_points": [128, 256], "ratios": [4, 2],
                            "ks": [4, 8]})
    plan = train.sandwich_plan(space, 2)(0, np.random.default_rng(0))
    assert len(plan) == 4
    assert plan[0] == space.subnet(space.largest())
    assert plan[1] == space.subnet(space.smallest())


def test_synthetic_cli_writes_the_layout(tmp_path, capsys):
    args = _parse(synthetic, [str(tmp_path / "out"), "--train", "2", "--val", "1",
                              "--points", "300", "--format", "txt"])
    assert synthetic.main(args) == 0
    assert len(list((tmp_path / "out" / "train").glob("*.txt"))) == 2
    assert len(list((tmp_path / "out" / "val").glob("*.txt"))) == 1
    (tmp_path / "file").write_text("x")
    assert synthetic.main(_parse(synthetic, [str(tmp_path / "file")])) == 2
