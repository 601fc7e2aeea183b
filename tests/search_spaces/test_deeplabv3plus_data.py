"""VOC-format reader and the synthetic generator: what they write is what a VOC root holds, and
every malformed input is an error naming the file or field."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from search_spaces.base import SpaceError
from search_spaces.deeplabv3plus import synth
from search_spaces.deeplabv3plus.data import VOCSegmentation, mask_to_tensor, to_tensor


@pytest.fixture
def voc(tmp_path):
    return synth.generate(tmp_path / "voc", n_train=6, n_val=4, num_classes=5, min_size=30,
                          max_size=40, seed=1)


def test_generated_dataset_is_voc_format(voc):
    ds = VOCSegmentation(voc, "train", num_classes=5)
    assert len(ds) == 6 and len(VOCSegmentation(voc, "val", num_classes=5)) == 4
    sizes = set()
    for i in range(len(ds)):
        image, mask = ds.load(i)
        assert image.dtype == np.uint8 and image.shape[2] == 3 and image.shape[:2] == mask.shape
        assert set(np.unique(mask)) <= {0, 1, 2, 3, 4, 255}
        sizes.add(mask.shape)
    assert len(sizes) > 1  # images differ in size, as in VOC
    with Image.open(voc / "SegmentationClass" / f"{ds.ids[0]}.png") as png:
        assert png.mode == "P" and png.getpalette()[3:6] == [128, 0, 0]  # VOC colour map
    presence = ds.class_presence()
    assert presence.shape == (6, 5) and presence[:, 0].all() and presence[:, 1:].any()
    x, m = to_tensor(image, 32), mask_to_tensor(mask, 32)
    assert x.shape == (3, 32, 32) and m.shape == (32, 32)
    assert set(m.unique().tolist()) <= set(np.unique(mask).tolist())  # nearest keeps labels


def test_missing_and_malformed_dataset_directories(tmp_path, voc):
    with pytest.raises(SpaceError, match="does not exist"):
        VOCSegmentation(tmp_path / "nope", "train", num_classes=5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpaceError, match="lacks JPEGImages/"):
        VOCSegmentation(tmp_path / "empty", "train", num_classes=5)
    with pytest.raises(SpaceError, match=r"no split 'test'.*has \['train', 'val'\]"):
        VOCSegmentation(voc, "test", num_classes=5)
    first = (voc / "ImageSets/Segmentation/train.txt").read_text().split()[0]
    (voc / "JPEGImages" / f"{first}.jpg").unlink()
    with pytest.raises(SpaceError, match=f"missing file.*JPEGImages/{first}.jpg"):
        VOCSegmentation(voc, "train", num_classes=5)
    (voc / "ImageSets/Segmentation/val.txt").write_text("../../etc/passwd\n")
    with pytest.raises(SpaceError, match="invalid image id"):
        VOCSegmentation(voc, "val", num_classes=5)


def test_bad_masks_name_the_file(voc):
    ds = VOCSegmentation(voc, "train", num_classes=5)
    path = ds.mask_path(ds.ids[0])
    image, mask = ds.load(0)
    Image.fromarray(mask[:-3], mode="L").save(path)
    with pytest.raises(SpaceError, match=rf"{path.name}: mask size .* differs from image"):
        ds.load(0)
    bad = mask.copy()
    bad[0, 0] = 9
    Image.fromarray(bad, mode="L").save(path)
    with pytest.raises(SpaceError, match=r"class index\(es\) \[9\] out of range; allowed 0..4"):
        ds.load(0)
    Image.fromarray(np.stack([mask] * 3, axis=-1)).save(path)
    with pytest.raises(SpaceError, match="mask mode is RGB"):
        ds.load(0)
    path.write_bytes(b"garbage")
    with pytest.raises(SpaceError, match="not a readable PNG"):
        ds.load(0)
    assert VOCSegmentation(voc, "train", num_classes=10).load(1)[1].ndim == 2


def test_synth_voc_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = parser.parse_args([str(tmp_path / "d"), "--train", "2", "--val", "1",
                              "--min-size", "24", "--max-size", "24"])
    assert synth.main(args) == 0
    assert len(list((tmp_path / "d" / "JPEGImages").glob("*.jpg"))) == 3
    args = parser.parse_args([str(tmp_path / "e"), "--classes", "20"])
    assert synth.main(args) == 2
    assert "num_classes must be in 2..9" in capsys.readouterr().out


def test_image_cache_respects_its_budget(voc):
    from search_spaces.deeplabv3plus.evaluation import ImageCache

    ds = VOCSegmentation(voc, "val", num_classes=5)
    small = ImageCache(ds, max_bytes=10_000)
    first = small.tensor(0, 32)
    for i in range(len(ds)):
        small.tensor(i, 32)
    assert small._bytes <= 10_000
    assert small.tensor(0, 32).equal(first)  # re-read when not cached: same values
    big = ImageCache(ds)
    big.batch(list(range(len(ds))), 32)
    assert len(big._resized) == len(ds)


def test_calibration_inputs_are_training_images_at_the_arch_resolution(tmp_path, monkeypatch):
    """What the GAP8 int8 export calibrates on: real images, not the random example input."""
    from search_spaces.deeplabv3plus.space import DeepLabSpace
    from tests.search_spaces.test_deeplabv3plus import TINY

    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    synth.generate(tmp_path / "voc", n_train=3, n_val=2, num_classes=4, min_size=30,
                   max_size=40, seed=2)
    space = DeepLabSpace({**TINY, "data_dir": "voc"})
    arch = space.smallest()
    res = int(arch["resolution"])
    inputs = space.calibration_inputs(arch, 5)
    assert len(inputs) == 3  # all the training images there are
    assert all(x.shape == (1, 3, res, res) for x in inputs)
    assert not torch.equal(inputs[0], inputs[1])
    assert DeepLabSpace(TINY).calibration_inputs(arch, 5) == []  # no dataset: none
