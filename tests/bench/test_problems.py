"""The #17 suite's declarations: a disjoint dev/test split, deterministic synthetic tables."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from problems import PROBLEMS, SUITES, synthetic_table  # noqa: E402


def test_the_split_is_declared_and_disjoint():
    assert set(SUITES) == {"dev", "test"}
    assert not set(SUITES["dev"]) & set(SUITES["test"])
    for split, names in SUITES.items():
        assert all(PROBLEMS[n].split == split for n in names)
    # the spaces the defaults were tuned on (NAS-Bench-Graph) are never test problems
    assert all(not n.startswith("nbg") for n in SUITES["test"])
    assert {len(PROBLEMS[n].objectives) for n in SUITES["test"]} == {2, 3, 4}


def test_synthetic_tables_are_complete_and_deterministic(tmp_path):
    a = synthetic_table(5, tmp_path / "a.csv", dims=3, choices=3).read_text()
    b = synthetic_table(5, tmp_path / "b.csv", dims=3, choices=3).read_text()
    c = synthetic_table(6, tmp_path / "c.csv", dims=3, choices=3).read_text()
    assert a == b != c
    with open(tmp_path / "a.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len({tuple(r[f"d{i}"] for i in range(3)) for r in rows}) == 27 == len(rows)
    assert all(0 < float(r["acc"]) < 1 and float(r["latency_ms"]) > 0 for r in rows)
