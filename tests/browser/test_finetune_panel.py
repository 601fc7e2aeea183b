"""The viewer's fine-tuning panel in a real browser against the real app: a tiny DeepLabV3+
study with a ``finetune`` stage run by the real worker, the panel checked against the API's
``extra.finetune`` (both fronts, seconds per candidate)."""

from __future__ import annotations

import pytest
import torch

from search_spaces.deeplabv3plus.synth import generate
from tests.browser.conftest import screenshot, wait_ready
from tests.search_spaces.test_deeplabv3plus import TINY

pytestmark = pytest.mark.browser


def test_study_page_shows_the_fronts_before_and_after_fine_tuning(live, page, bench_data):
    torch.set_num_threads(1)
    if not (bench_data / "voc-ft").exists():
        generate(bench_data / "voc-ft", n_train=8, n_val=4, num_classes=4, min_size=36,
                 max_size=48)
    study = live.submit({
        "name": "fine-tuned",
        "search_space": {"name": "deeplabv3plus", "options": {
            **TINY, "data_dir": "voc-ft", "subset_size": 4, "batch_size": 4}},
        "objectives": [{"metric": "miou", "direction": "maximize"},
                       {"metric": "macs", "direction": "minimize"}],
        "strategy": {"name": "random"}, "budget": {"trials": 4},
        "finetune": {"epochs": 1},
    })
    live.run_queue()
    ft = live.get(f"/studies/{study['id']}")["extra"]["finetune"]
    assert ft["state"] == "done" and ft["per_candidate"]
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    panel = page.locator("#finetune")
    assert panel.is_visible()
    rows = panel.locator("#finetune-table tbody tr")
    assert rows.count() == len(ft["front_before"])
    after = {p["number"] for p in ft["front_after"]}
    text = panel.inner_text()
    done = ft["progress"]["done"]
    assert f"{done}/{ft['progress']['total']} candidates" in text
    for i, p in enumerate(ft["front_before"]):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == f"#{p['number']}"
        assert (cells[-1] == "yes") == (p["number"] in after)
    screenshot(page, "study-finetune")
