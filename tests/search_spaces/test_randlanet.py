"""RandLA-Net space: the SearchSpace contract with a tiny config, plus its own behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces import SPACES
from search_spaces.base import ArchError, SpaceError
from search_spaces.randlanet.checkpoint import save_supernet
from search_spaces.randlanet.neighbors import knn_kdtree, knn_torch
from search_spaces.randlanet.space import RandLANetSpace
from search_spaces.randlanet.synthetic import write_dataset
from tests.contracts.search_space import SearchSpaceContract

TINY = {
    "max_widths": [8, 16],
    "width_fractions": [0.5, 1.0],
    "depths": [1, 2],
    "num_points": [128, 256],
    "ratios": [4, 2],
    "ks": [4, 8],
    "num_classes": 4,
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    torch.set_num_threads(1)


def _randomise_bn(space: RandLANetSpace) -> None:
    """Non-trivial BN statistics, so that a wrong slice of them shows in the outputs."""
    gen = torch.Generator().manual_seed(1)
    for m in space.net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))


class TestRandLANetContract(SearchSpaceContract):
    @pytest.fixture(scope="class")
    def space(self):
        torch.set_num_threads(1)
        space = RandLANetSpace(TINY)
        _randomise_bn(space)
        return space


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    return tmp_path


def test_registered_and_dimension_stages():
    space = SPACES.get("randlanet")(TINY)
    dims = space.dimensions()
    assert {n for n, d in dims.items() if d.stage == 1} == {
        "num_points", "ratio_0", "ratio_1", "k_0", "k_1"}
    assert {n for n, d in dims.items() if d.stage == 2} == {"depth", "width_0", "width_1"}
    assert dims["ratio_0"].choices == (4, 2)  # cheapest first, largest subnet last
    assert dims["width_1"].choices == (8, 16)
    assert space.size() == 2 * 2**2 * 2**2 * 2 * 2**2


def test_default_space_size_is_documented():
    assert RandLANetSpace().size() == 4_782_969


def test_k_larger_than_points_left_is_rejected_before_running():
    space = RandLANetSpace({**TINY, "num_points": [16, 256], "ks": [4, 8]})
    arch = space.largest().replace(num_points=16, ratio_0=4, k_1=8, depth=2)
    with pytest.raises(ArchError, match=r"k_1=8 is larger than the 4 points left at layer 1"):
        space.validate(arch.to_dict())
    with pytest.raises(ArchError, match="k_1=8"):
        space.extract(arch)
    # the same arch with one layer does not use layer 1, so it runs
    space.validate(arch.replace(depth=1).to_dict())


def test_bad_options_name_the_field(data_dir):
    with pytest.raises(Exception, match="max_widths"):
        RandLANetSpace({"max_widths": [7, 16]})
    with pytest.raises(Exception, match="ratios"):
        RandLANetSpace({"ratios": [1, 2]})
    with pytest.raises(SpaceError, match="depths"):
        RandLANetSpace({**TINY, "depths": [3]})
    with pytest.raises(Exception, match="colour"):
        RandLANetSpace({"colour": 1})


def test_knn_backends_agree():
    gen = torch.Generator().manual_seed(0)
    pts = torch.rand(2, 300, 3, generator=gen)
    a, b = knn_torch(pts, pts, 6, chunk=64), knn_kdtree(pts, pts, 6)
    da = torch.gather(torch.cdist(pts, pts), 2, a)
    db = torch.gather(torch.cdist(pts, pts), 2, b)
    torch.testing.assert_close(da, db)  # same distances (ties may order differently)
    assert torch.equal(a[..., 0], torch.arange(300).expand(2, -1))  # each point is its nearest
    with pytest.raises(ValueError, match="k=400 is larger than the 300 points"):
        knn_torch(pts, pts, 400)


def test_torch_backend_is_used_while_tracing():
    space = RandLANetSpace({**TINY, "knn": "kdtree"})
    arch = space.smallest()
    model, x = space.extract(arch), space.example_input(arch)
    traced = torch.jit.trace(model, (x,), check_trace=False)
    # a k-d tree result baked in as a constant would ignore a different cloud's geometry
    y = x.clone()
    y[..., :3] = torch.flip(y[..., :3], dims=[1])
    with torch.inference_mode():
        torch.testing.assert_close(traced(y), model(y), rtol=1e-4, atol=1e-5)


def test_costs_grow_with_points_and_width():
    space = RandLANetSpace(TINY)
    small = space.smallest()
    more_points = small.replace(num_points=256)
    wider = small.replace(width_0=8)
    assert space.cost(more_points)["macs"] > space.cost(small)["macs"]
    assert space.cost(wider)["params"] > space.cost(small)["params"]
    assert space.cost(small)["params"] == sum(p.numel() for p in space.extract(small).parameters())


def test_evaluate_on_synthetic_scenes_and_checkpoint_round_trip(data_dir):
    write_dataset(data_dir / "scenes", n_train=1, n_val=2, points=600, seed=3)
    space = RandLANetSpace({**TINY, "data": "scenes", "val_scenes": 2})
    _randomise_bn(space)
    arch = space.largest()
    first = space.evaluate(arch, ["miou", "oa"])
    assert 0 <= first["miou"] <= 1 and 0 <= first["oa"] <= 1
    assert space.evaluate(arch, ["miou"]) == {"miou": first["miou"]}  # deterministic
    save_supernet(space.net, data_dir / "sn.safetensors")
    again = RandLANetSpace({"checkpoint": "sn.safetensors", "data": "scenes", "val_scenes": 2,
                            **{k: v for k, v in TINY.items()
                               if k not in ("max_widths", "num_classes")}})
    assert again.evaluate(arch, ["miou", "oa"]) == first
    with pytest.raises(SpaceError, match="contradicts the checkpoint"):
        RandLANetSpace({"checkpoint": "sn.safetensors", "max_widths": [8, 32]})


def test_evaluate_without_data_or_unknown_metric():
    space = RandLANetSpace(TINY)
    with pytest.raises(SpaceError, match="options.data is needed"):
        space.evaluate(space.smallest(), ["miou"])
    with pytest.raises(ArchError, match="unknown metric"):
        space.evaluate(space.smallest(), ["acc"])


def test_bad_checkpoint_is_a_clear_error(data_dir):
    (data_dir / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(SpaceError, match="not a RandLA-Net supernet checkpoint"):
        RandLANetSpace({"checkpoint": "junk.safetensors"})


def test_extracted_subnet_runs_on_a_different_cloud_size():
    space = RandLANetSpace(TINY)
    model = space.extract(space.largest())
    with torch.inference_mode():
        out = model(torch.rand(1, 300, 6))
    assert out.shape == (1, 300, 4) and np.all(np.isfinite(out.numpy()))


def test_bn_calibration_is_per_subnet_and_leaves_the_supernet_alone(data_dir):
    write_dataset(data_dir / "scenes", n_train=2, n_val=1, points=500, seed=4)
    space = RandLANetSpace({**TINY, "data": "scenes", "val_scenes": 1, "calibrate_bn": 2})
    _randomise_bn(space)
    before = {k: v.clone() for k, v in space.net.state_dict().items()}
    arch = space.smallest()
    model = space.calibrated(arch, space.train_scenes(2))
    plain = space.extract(arch)
    stem_mean = model.stem.bn.running_mean
    assert not torch.allclose(stem_mean, plain.stem.bn.running_mean)
    assert int(model.stem.bn.num_batches_tracked) == 2  # one batch per calibration scene
    first = space.evaluate(arch, ["miou"])
    assert space.evaluate(arch, ["miou"]) == first  # seeded: deterministic
    for k, v in space.net.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(SpaceError, match="data is needed"):
        RandLANetSpace({**TINY, "calibrate_bn": 2}).evaluate(arch, ["miou"])


def test_subnet_exports_to_onnx_with_its_neighbour_search():
    import onnxruntime as ort

    from evaluators.profilers.onnx_export import export_onnx, input_feed

    space = RandLANetSpace(TINY)
    arch = space.largest()
    model, x = space.extract(arch), space.example_input(arch)
    session = ort.InferenceSession(export_onnx(model, x))
    y = x.clone()
    y[..., :3] = y[..., :3].flip(1)  # another geometry: the graph must search neighbours itself
    with torch.inference_mode():
        for inp in (x, y):
            got = session.run(None, input_feed(inp))[0]
            np.testing.assert_allclose(got, model(inp).numpy(), rtol=1e-4, atol=1e-4)


def test_dims_of_layers_beyond_the_depth_are_inactive_and_share_a_canonical_arch():
    space = RandLANetSpace(TINY)
    shallow = space.largest().replace(depth=1)
    assert space.inactive(shallow) == {"ratio_1", "k_1", "width_1"}
    assert space.inactive(space.largest()) == set()
    dims = space.dimensions()
    twin = shallow.replace(**{n: dims[n].smallest for n in ("width_1", "k_1", "ratio_1")})
    assert twin.key() != shallow.key()
    assert space.canonical(twin).key() == space.canonical(shallow).key()
    assert space.canonical(space.largest()) == space.largest()
    # the same network: same costs, same output
    assert space.cost(twin) == space.cost(shallow)
    cloud = space.example_input(shallow)
    torch.testing.assert_close(space.supernet_forward(twin, cloud),
                               space.supernet_forward(shallow, cloud))


def test_kept_neighbourhoods_change_no_result_and_are_searched_once(data_dir):
    write_dataset(data_dir / "scenes", n_train=2, n_val=2, points=500, seed=5)
    opts = {**TINY, "data": "scenes", "val_scenes": 2, "calibrate_bn": 2}
    kept, fresh = RandLANetSpace(opts), RandLANetSpace({**opts, "geometry_cache": 0})
    _randomise_bn(kept)
    fresh._net = kept.net  # the same weights in both
    rng = np.random.default_rng(0)
    archs = [kept.validate(kept.sample(rng)) for _ in range(12)]
    archs += [a.replace(width_0=4) for a in archs[:4]]  # same sampling, another network
    for arch in archs + archs[::-1]:  # interleaved sampling parameters, each arch twice
        assert kept.evaluate(arch, ["miou", "oa"]) == fresh.evaluate(arch, ["miou", "oa"])
    assert not fresh.kept_samples()
    # 4 scenes (2 calibration, 2 validation) x the num_points choices seen, at most
    assert 0 < len(kept.kept_samples()) <= 4 * len(TINY["num_points"])
    entries = sum(s.geometry.entries for _, _, s in kept.kept_samples())
    wider = archs[0].replace(width_0=8 if archs[0]["width_0"] == 4 else 4)
    kept.evaluate(wider, ["miou"])  # new widths, same sampling: nothing searched again
    assert sum(s.geometry.entries for _, _, s in kept.kept_samples()) == entries


def test_kept_samples_are_bounded(data_dir):
    write_dataset(data_dir / "scenes", n_train=1, n_val=2, points=400, seed=6)
    space = RandLANetSpace({**TINY, "data": "scenes", "val_scenes": 2, "geometry_cache": 1})
    for n in TINY["num_points"]:
        space.evaluate(space.largest().replace(num_points=n), ["miou"])
    assert len(space.kept_samples()) == 1


def test_a_geometry_of_other_points_is_refused():
    from search_spaces.randlanet.geometry import PointGeometry

    space = RandLANetSpace(TINY)
    model = space.extract(space.largest())
    with pytest.raises(ValueError, match="geometry of"):
        model(torch.rand(1, 128, 6), geometry=PointGeometry(torch.rand(1, 64, 3)))
