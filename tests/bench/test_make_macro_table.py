"""NAS-Bench-Macro networks rebuilt from the README match the table's parameter counts."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from make_macro_table import SOURCE, macro_net  # noqa: E402


@pytest.mark.skipif(not SOURCE.is_file(), reason="NAS-Bench-Macro table absent")
def test_rebuilt_networks_have_the_tables_parameter_counts():
    with open(SOURCE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows[:: len(rows) // 12]:  # 13 archs across the table, every choice per layer
        net = macro_net(row["arch"])
        assert sum(p.numel() for p in net.parameters()) == int(row["params"]), row["arch"]


def test_the_gap8_profiler_measures_a_rebuilt_network():
    import torch

    from evaluators.profilers.gap8.profiler import Gap8Profiler

    small, large = (Gap8Profiler({}).measure(macro_net(code), torch.randn(1, 3, 32, 32))
                    for code in ("00000000", "22222222"))
    assert 0 < small.latency_ms < large.latency_ms
