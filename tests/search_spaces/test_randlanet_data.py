"""RandLA-Net data: S3DIS-style scene loading with validation, synthetic scenes, mIoU."""

from __future__ import annotations

import numpy as np
import pytest

from search_spaces.base import SpaceError
from search_spaces.randlanet.data import load_scene, load_split, sample_points
from search_spaces.randlanet.synthetic import make_scene, write_dataset


def test_synthetic_scene_has_all_columns_and_classes():
    arr = make_scene(np.random.default_rng(0), 3000)
    assert arr.shape == (3000, 7) and arr.dtype == np.float32
    labels = set(arr[:, 6].astype(int))
    assert 0 in labels and len(labels) >= 2 and labels <= {0, 1, 2, 3}
    assert arr[:, 3:6].min() >= 0 and arr[:, 3:6].max() <= 255
    # objects stand on the floor: nothing far below it
    assert arr[:, 2].min() > -0.1


@pytest.mark.parametrize("fmt", ["npy", "txt"])
def test_written_dataset_loads_back(tmp_path, fmt):
    write_dataset(tmp_path, n_train=2, n_val=1, points=500, seed=1, fmt=fmt)
    train = load_split(tmp_path, "train", num_classes=4)
    val = load_split(tmp_path, "val", num_classes=4)
    assert len(train) == 2 and len(val) == 1 and len(val[0]) == 500
    assert np.allclose(val[0].xyz.mean(0), 0, atol=1e-4)
    assert val[0].rgb.max() <= 1.0


def _write_txt(path, rows):
    path.write_text("\n".join(" ".join(str(v) for v in r) for r in rows) + "\n")
    return path


def test_wrong_column_count_is_named(tmp_path):
    path = _write_txt(tmp_path / "a.txt", [[0, 0, 0, 1, 2, 3]] * 3)
    with pytest.raises(SpaceError, match=r"expected 7 columns \(x y z r g b label\), got 6"):
        load_scene(path, 4)


def test_label_out_of_range_is_named(tmp_path):
    path = _write_txt(tmp_path / "b.txt", [[0, 0, 0, 1, 2, 3, 0], [1, 1, 1, 1, 2, 3, 9]])
    with pytest.raises(SpaceError, match=r"label\(s\) \[9\] out of range; allowed: 0..3"):
        load_scene(path, 4)


def test_empty_scene_and_bad_values(tmp_path):
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(SpaceError, match="empty"):
        load_scene(tmp_path / "e.txt", 4)
    np.save(tmp_path / "n.npy", np.full((3, 7), np.nan))
    with pytest.raises(SpaceError, match="NaN"):
        load_scene(tmp_path / "n.npy", 4)
    _write_txt(tmp_path / "c.txt", [[0, 0, 0, 300, 2, 3, 0]])
    with pytest.raises(SpaceError, match="colours must be in 0..255"):
        load_scene(tmp_path / "c.txt", 4)
    _write_txt(tmp_path / "f.txt", [[0, 0, 0, 1, 2, 3, 0.5]])
    with pytest.raises(SpaceError, match="integers"):
        load_scene(tmp_path / "f.txt", 4)
    (tmp_path / "g.txt").write_text("1 2 three\n")
    with pytest.raises(SpaceError, match="cannot read"):
        load_scene(tmp_path / "g.txt", 4)


def test_missing_split_folder(tmp_path):
    with pytest.raises(SpaceError, match="no 'val' folder"):
        load_split(tmp_path, "val", 4)
    (tmp_path / "val").mkdir()
    with pytest.raises(SpaceError, match="no scene files"):
        load_split(tmp_path, "val", 4)


def test_sampling_pads_small_scenes_and_is_seeded(tmp_path):
    write_dataset(tmp_path, n_train=1, n_val=1, points=100, seed=2)
    scene = load_split(tmp_path, "val", 4)[0]
    idx = sample_points(scene, 150, np.random.default_rng(0))
    assert len(idx) == 150 and set(idx) == set(range(100))
    again = sample_points(scene, 150, np.random.default_rng(0))
    assert np.array_equal(idx, again)
    sub = sample_points(scene, 50, np.random.default_rng(0))
    assert len(set(sub)) == 50
