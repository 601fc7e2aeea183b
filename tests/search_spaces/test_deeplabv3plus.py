"""DeepLabV3+ space: the SearchSpace contract on a tiny config, plus costs, checkpoints, options
and accuracy evaluation on a small synthetic VOC dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from search_spaces import SPACES
from search_spaces.base import ArchError, SpaceError
from search_spaces.deeplabv3plus.checkpoint import save_checkpoint
from search_spaces.deeplabv3plus.space import DeepLabSpace
from search_spaces.deeplabv3plus.synth import generate
from tests.contracts.search_space import SearchSpaceContract

TINY = {
    "num_classes": 4,
    "width_mult": 0.25,
    "aspp_channels": 16,
    "low_level_channels": 8,
    "decoder_channels": 16,
    "resolutions": [32, 48],
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def randomize_bn(space: DeepLabSpace) -> None:
    """Non-trivial BN statistics and affine terms, so permutations and slices are visible."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in space.supernet.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


class TestDeepLabContract(SearchSpaceContract):
    @pytest.fixture(scope="class")
    def space(self):
        space = DeepLabSpace(TINY)
        randomize_bn(space)
        return space


@pytest.fixture
def voc(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    generate(tmp_path / "voc", n_train=12, n_val=16, num_classes=4, min_size=40, max_size=56,
             seed=3)
    return tmp_path / "voc"


def test_registered_and_space_size():
    assert SPACES.get("deeplabv3plus") is DeepLabSpace
    space = DeepLabSpace()
    dims = space.dimensions()
    assert space.size() == 10711401679872  # default (full-size) space, documented
    assert dims["resolution"].choices == (384, 448, 512)
    assert dims["aspp_channels"].choices == (64, 128, 192, 256)
    assert sum(n.endswith("_expand") for n in dims) == 16


def test_costs_match_the_static_model():
    space = DeepLabSpace(TINY)
    for arch in (space.smallest(), space.largest(), space.sample(np.random.default_rng(5))):
        model = space.build_static(arch)
        macs = 0

        def hook(mod, _inp, out):
            nonlocal macs
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs += out[0].numel() * (mod.in_channels // mod.groups) * k

        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_hook(hook)
        model.eval()(space.example_input(arch))
        costs = space.cost(arch)
        assert costs["params"] == sum(p.numel() for p in model.parameters())
        assert costs["macs"] == macs
        assert costs["params_bytes"] == costs["params"]
        biggest = max(t.numel() for t in model.state_dict().values())
        assert costs["peak_activation_bytes"] > 3 * int(arch["resolution"]) ** 2 > 0
        assert biggest > 0


def test_depth_and_rates_change_the_network():
    space = DeepLabSpace(TINY)
    big = space.largest()
    shallow = big.replace(stage3_depth=2, aspp_rate12=False)
    cfg = space.net_config(shallow)
    assert len(cfg.blocks) == len(space.net_config(big).blocks) - 2
    assert cfg.aspp_rates == (6, 18)
    assert space.cost(shallow)["macs"] < space.cost(big)["macs"]


def test_arch_value_outside_the_space_names_the_field():
    space = DeepLabSpace(TINY)
    with pytest.raises(ArchError, match="block5_expand"):
        space.extract(space.largest().replace(block5_expand=5))
    with pytest.raises(ArchError, match="resolution"):
        space.cost({**space.largest().to_dict(), "resolution": 33})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"resolutions": [16]}, "resolutions"),
        ({"expand_ratios": [3, 3]}, "expand_ratios"),
        ({"aspp_channels": 30}, "aspp_channels"),
        ({"subset_selection": "best"}, "subset_selection"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(Exception, match=field):
        DeepLabSpace(options)


def test_paths_must_exist_under_data_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    with pytest.raises(SpaceError, match="checkpoint.*does not exist"):
        DeepLabSpace({**TINY, "checkpoint": "nope.pt"})
    with pytest.raises(SpaceError, match="data_dir.*does not exist"):
        DeepLabSpace({**TINY, "data_dir": "nowhere"})


def test_own_checkpoint_round_trips_and_another_structure_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    src = DeepLabSpace(TINY)
    randomize_bn(src)
    save_checkpoint(tmp_path / "sn.pt", {"model_state": src.supernet.state_dict(),
                                         "structure": src.structure.to_dict(),
                                         "supernet_trained": True, "epoch": 1})
    loaded = DeepLabSpace({**TINY, "checkpoint": "sn.pt"})
    arch = loaded.sample(np.random.default_rng(2))
    x = loaded.example_input(arch)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.extract(arch)(x), src.extract(arch)(x))
    assert loaded.checkpoint_info["supernet_trained"] is True
    other = DeepLabSpace({**TINY, "num_classes": 5, "checkpoint": "sn.pt"})
    with pytest.raises(SpaceError, match="num_classes: checkpoint has 4, options say 5"):
        other.extract(other.largest())


def test_public_layout_checkpoint_loads_and_is_reordered(tmp_path, monkeypatch):
    """A VainF-style file ({"model_state": ...}, DataParallel prefix) loads; channels are sorted
    by importance since it was not trained as a supernet; the full network is unchanged."""
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    src = DeepLabSpace(TINY)
    randomize_bn(src)
    state = {f"module.{k}": v for k, v in src.supernet.state_dict().items()}
    torch.save({"model_state": state, "cur_itrs": 30000, "best_score": 0.7}, tmp_path / "v.pth")
    loaded = DeepLabSpace({**TINY, "checkpoint": "v.pth"})
    arch = loaded.largest()
    x = loaded.example_input(arch)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.extract(arch)(x), src.extract(arch)(x),
                                   rtol=1e-4, atol=1e-5)
    expand = loaded.supernet.backbone.block(5).conv[2].weight.detach().abs().sum(dim=(0, 2, 3))
    assert torch.all(expand[:-1] >= expand[1:])  # hidden channels sorted, most important first


def test_checkpoint_of_another_architecture_lists_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    wrong = {"features.0.0.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}
    torch.save(wrong, tmp_path / "resnet.pt")
    space = DeepLabSpace({**TINY, "checkpoint": "resnet.pt"})
    with pytest.raises(SpaceError) as err:
        space.extract(space.largest())
    msg = str(err.value)
    assert "missing keys (356)" in msg and "backbone.high_level_features.0.conv.0.0.weight" in msg
    assert "unexpected keys (2): fc.weight, features.0.0.weight" in msg
    wider = DeepLabSpace({**TINY, "width_mult": 0.5})
    torch.save(wider.supernet.state_dict(), tmp_path / "wide.pt")
    space = DeepLabSpace({**TINY, "checkpoint": "wide.pt"})
    with pytest.raises(SpaceError, match="shape mismatches"):
        space.extract(space.largest())
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    space = DeepLabSpace({**TINY, "checkpoint": "junk.pt"})
    with pytest.raises(SpaceError, match="junk.pt: cannot be read"):
        space.extract(space.largest())


@pytest.mark.parametrize("selection", ["stratified", "random", "ranking", "full"])
def test_evaluate_miou_on_a_subset(voc, selection):
    space = DeepLabSpace({**TINY, "data_dir": "voc", "subset_size": 6,
                          "subset_selection": selection, "ranking_references": 3})
    arch = space.smallest()
    values = space.evaluate(arch, ["miou", "pixel_accuracy"])
    assert 0.0 <= values["miou"] <= 1.0 and 0.0 <= values["pixel_accuracy"] <= 1.0
    assert len(space.subset()) == (16 if selection == "full" else 6)
    assert space.evaluate(arch, ["miou"]) == {"miou": values["miou"]}  # deterministic


def test_bn_recalibration_touches_only_the_subnet(voc):
    space = DeepLabSpace({**TINY, "data_dir": "voc", "subset_size": 4,
                          "bn_recalibration_batches": 2, "batch_size": 4})
    before = {k: v.clone() for k, v in space.supernet.state_dict().items()}
    arch = space.sample(np.random.default_rng(0))
    plain = space.extract(arch)
    recal = space.prepare(space.extract(arch), arch)
    bn_plain = plain.backbone.low_level_features[0][1].running_var
    bn_recal = recal.backbone.low_level_features[0][1].running_var
    assert not torch.allclose(bn_plain, bn_recal)
    for k, v in space.supernet.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_miou_needs_a_dataset():
    space = DeepLabSpace(TINY)
    with pytest.raises(SpaceError, match="data_dir is required"):
        space.evaluate(space.smallest(), ["miou"])
    with pytest.raises(ArchError, match="unknown metric"):  # fails the trial, not the study
        space.evaluate(space.smallest(), ["accuracy"])
