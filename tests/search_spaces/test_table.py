from __future__ import annotations

import csv
from pathlib import Path

import pytest

from search_spaces.base import ArchError, SpaceError
from search_spaces.table import TableSpace
from tests.contracts.search_space import SearchSpaceContract


def write_table(path: Path, *, drop_last: bool = False) -> Path:
    rows = []
    for depth in (1, 2, 3):
        for op in ("conv", "pool", "skip"):
            for width in (8, 16):
                rows.append(
                    {"dataset": "a", "depth": depth, "op": op, "width": width,
                     "acc": round(0.5 + 0.05 * depth + (op == "conv") * 0.1 + width / 200, 4),
                     "latency_ms": depth * width / 4 + (op == "conv")}
                )
    rows.append({"dataset": "b", "depth": 1, "op": "conv", "width": 8, "acc": 0.1,
                 "latency_ms": 1.0})
    if drop_last:
        rows = [r for r in rows
                if not (r["depth"] == 3 and r["op"] == "skip" and r["width"] == 16)]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def write_sparse_table(path: Path, *, keep: float = 0.25, seed: int = 0) -> set[str]:
    """A 4-dim table (5^4 combinations) holding a random ``keep`` share of them as rows, as
    NAS-Bench-Graph holds 44% of its grid; returns the keys of the archs it has rows for."""
    import itertools

    import numpy as np

    from search_spaces.base import Arch

    rng = np.random.default_rng(seed)
    rows, keys = [], set()
    for combo in itertools.product(range(5), repeat=4):
        if rng.random() >= keep:
            continue
        arch = dict(zip("abcd", combo, strict=True))
        rows.append({**arch, "acc": round(0.5 + 0.02 * sum(combo) + 0.01 * rng.random(), 4),
                     "latency_ms": round(1 + combo[0] * combo[1] + combo[2] + rng.random(), 3)})
        keys.add(Arch(arch).key())
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return keys


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PARETONAS_DATA_DIRS", str(tmp_path))
    return tmp_path


class TestTableContract(SearchSpaceContract):
    @pytest.fixture(scope="class")
    def space(self, tmp_path_factory):
        root = tmp_path_factory.mktemp("tables")
        write_table(root / "t.csv")
        mp = pytest.MonkeyPatch()
        mp.setenv("PARETONAS_DATA_DIRS", str(root))
        yield TableSpace({"path": "t.csv", "params": ["depth", "op", "width"],
                          "filter": {"dataset": "a"}})
        mp.undo()


def test_lookup_filter_and_metrics(data_dir):
    write_table(data_dir / "t.csv")
    space = TableSpace({"path": "t.csv", "params": ["depth", "op", "width"],
                        "filter": {"dataset": "a"}})
    assert space.size() == 18
    assert space.dimensions()["op"].ordinal is False
    assert space.dimensions()["depth"].choices == (1, 2, 3)
    assert set(space.metrics()) == {"acc", "latency_ms"}
    assert space.metrics()["latency_ms"].direction == "minimize"
    arch = space.validate({"depth": 2, "op": "conv", "width": 16})
    assert space.evaluate(arch, ["acc"]) == {"acc": pytest.approx(0.78)}


def test_missing_row_is_an_arch_error(data_dir):
    write_table(data_dir / "t.csv", drop_last=True)
    space = TableSpace({"path": "t.csv", "params": ["depth", "op", "width"],
                        "filter": {"dataset": "a"}})
    with pytest.raises(ArchError, match="no row"):
        space.evaluate(space.validate({"depth": 3, "op": "skip", "width": 16}), ["acc"])


def test_missing_column_names_it(data_dir):
    write_table(data_dir / "t.csv")
    with pytest.raises(SpaceError, match=r"lacks column\(s\) \['nope'\]"):
        TableSpace({"path": "t.csv", "params": ["depth", "nope"]})


def test_path_outside_data_dirs_is_refused(data_dir, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    write_table(other / "t.csv")
    with pytest.raises(SpaceError, match="outside the allowed data directories"):
        TableSpace({"path": str(other / "t.csv"), "params": ["depth"]})
    with pytest.raises(SpaceError, match="outside the allowed"):
        TableSpace({"path": "../" + other.name + "/t.csv", "params": ["depth"]})
    (data_dir / "link.csv").symlink_to(other / "t.csv")
    with pytest.raises(SpaceError, match="outside the allowed"):
        TableSpace({"path": "link.csv", "params": ["depth"]})


def test_unknown_option_is_rejected(data_dir):
    write_table(data_dir / "t.csv")
    with pytest.raises(Exception, match="colour"):
        TableSpace({"path": "t.csv", "params": ["depth"], "colour": "red"})
