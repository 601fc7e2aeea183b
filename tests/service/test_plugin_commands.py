"""``paretonas supernet train`` and ``paretonas data`` run the trainers and generators
registered with the search spaces, built-in or added later, and list them."""

from __future__ import annotations

import sys
import types

import pytest

from search_spaces import DATA_GENERATORS, SPACES, TRAINERS
from service.interfaces.cli import main


@pytest.fixture
def toy_trainer(monkeypatch):
    """A trainer module registered under "toy" for this test only."""
    module = types.ModuleType("toy_trainer_plugin")
    module.__doc__ = "toy trainer"
    module.add_arguments = lambda p: p.add_argument("--out", required=True)
    module.main = lambda args: (open(args.out, "w").write("trained"), 0)[1]
    monkeypatch.setitem(sys.modules, "toy_trainer_plugin", module)
    monkeypatch.setattr(TRAINERS, "_targets", {**TRAINERS._targets, "toy": "toy_trainer_plugin"})
    monkeypatch.setattr(TRAINERS, "_cache", {})
    return module


def test_a_registered_trainer_runs(toy_trainer, tmp_path):
    assert main(["supernet", "train", "toy", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o").read_text() == "trained"


def test_built_in_trainers_and_generators_belong_to_registered_spaces(capsys):
    assert set(TRAINERS.names()) <= set(SPACES.names())
    assert {"deeplabv3plus", "randlanet"} <= set(TRAINERS.names())
    assert {"synth-voc", "synth-scenes", "stdlib-topics"} <= set(DATA_GENERATORS.names())
    with pytest.raises(SystemExit):
        main(["data", "no-such-generator"])
    err = capsys.readouterr().err
    assert "invalid choice" in err and "synth-voc" in err
