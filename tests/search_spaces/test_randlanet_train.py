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


def test_progressive_plan_opens_sampling_then_depth_then_width():
    space = RandLANetSpace({"max_widths": [8, 16, 32], "num_points": [128, 256],
                            "ratios": [4, 2], "ks": [4, 8], "width_fractions": [0.5, 1.0]})
    dims = space.dimensions()
    plan = train.shrinking_plan(space, "progressive", 6, phase_steps=[1, 1, 1, 1])
    rng = np.random.default_rng(0)
    assert plan(0, rng) == [space.subnet(space.largest())]
    opened = []
    for step in (1, 2, 3):
        archs = train.shrinking.step_archs(space, rng, schedule="progressive", phase=step,
                                           num_random=30, phases=train.PHASES)
        assert archs[0] == space.largest()
        opened.append({train.dim_group(n) for a in archs for n, v in a.items()
                       if v != dims[n].largest})
        assert all(space.subnet(a) for a in archs)  # restricted subnets are all runnable
    assert opened == [{"sampling"}, {"sampling", "depth"}, {"sampling", "depth", "width"}]
    with pytest.raises(train.SpaceError, match="needs phase_steps"):
        train.shrinking_plan(space, "progressive", 2)
    with pytest.raises(train.SpaceError, match="allowed: sandwich, progressive, largest"):
        train.shrinking_plan(space, "ofa", 2)


def test_distilled_progressive_training_runs_and_is_recorded(tmp_path, capsys):
    write_dataset(tmp_path / "scenes", n_train=4, n_val=1, points=400, seed=0)
    argv = ["--data", str(tmp_path / "scenes"), "--out", str(tmp_path / "sn.safetensors"),
            "--steps", "8", "--schedule", "progressive", "--phase-steps", "2,2,2,2",
            "--distill", *TINY_ARGS]
    assert train.main(_parse(train, argv)) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["schedule"] == "progressive" and summary["distill"] is True
    assert summary["phase_steps"] == [2, 2, 2, 2]
    bad = [*argv[:-len(TINY_ARGS)], *TINY_ARGS]
    bad[bad.index("2,2,2,2")] = "2,2,2"
    assert train.main(_parse(train, bad)) == 2
    assert "summing to the steps" in capsys.readouterr().err


def test_distillation_needs_a_teacher_and_pulls_towards_it(tmp_path):
    """One subnet per step: no teacher, the same losses with or without distillation (the
    shared batch draws the same points). The distillation loss is smallest, with a zero
    gradient, where the student predicts the teacher's probabilities."""
    write_dataset(tmp_path / "scenes", n_train=2, n_val=1, points=300, seed=0)
    data = train.load_split(tmp_path / "scenes", "train", 4)
    space = RandLANetSpace({"max_widths": [8, 16], "num_points": [128, 256], "ratios": [4, 2],
                            "ks": [4, 8]})
    only = train.fixed_plan(*space.subnet(space.largest()))
    pair = train.shrinking_plan(space, "sandwich", 0)
    runs = {}
    for name, plan, distill in (("alone", only, False), ("alone-d", only, True),
                                ("pair", pair, False), ("pair-d", pair, True)):
        torch.manual_seed(0)
        net = train.RandLANet(space.net_config)
        runs[name] = train.train_steps(net, data, plan, steps=2, batch=1, lr=0.01, seed=0,
                                       distill=distill)
    assert runs["alone"] == pytest.approx(runs["alone-d"])
    assert runs["pair"] != pytest.approx(runs["pair-d"])
    teacher_logits = torch.randn(2, 5, 4)
    teacher = torch.softmax(teacher_logits, -1)
    at = teacher_logits.clone().requires_grad_(True)
    loss_at = train.shrinking.distill_loss(at, teacher, dim=-1)
    loss_at.backward()
    assert at.grad.abs().max() < 1e-6
    assert float(train.shrinking.distill_loss(torch.randn(2, 5, 4), teacher, dim=-1)) > float(
        loss_at.detach())
