"""Which front members the fine-tuning stage takes (an even spread, ends first) and the
dataset-pruning subsets derived from success rates."""

from __future__ import annotations

import pytest

from search_spaces.success import SuccessLog, subset_of
from service.engine.data_pruning import derive_subsets, pick_subset, summary
from service.engine.front_spread import coarse_to_fine, even_positions


def test_even_positions_take_equal_steps_and_both_ends():
    assert even_positions(13, 3) == [0, 6, 12]
    assert even_positions(13, 5) == [0, 3, 6, 9, 12]
    assert even_positions(4, 8) == [0, 1, 2, 3]
    assert even_positions(5, 1) == [0] and even_positions(0, 3) == []
    for n in range(2, 30):
        for k in range(2, n + 1):
            pos = even_positions(n, k)
            assert len(pos) == k and pos[0] == 0 and pos[-1] == n - 1
            steps = [b - a for a, b in zip(pos, pos[1:], strict=False)]
            assert max(steps) - min(steps) <= 1, (n, k, pos)


def test_every_prefix_of_the_coarse_to_fine_order_covers_the_front():
    assert coarse_to_fine(13)[:3] == [0, 12, 6]
    assert coarse_to_fine(1) == [0] and coarse_to_fine(2) == [0, 1]
    for n in range(1, 40):
        order = coarse_to_fine(n)
        assert sorted(order) == list(range(n))
        for k in range(2, n + 1):
            prefix = sorted(order[:k])
            gaps = [b - a for a, b in zip(prefix, prefix[1:], strict=False)]
            # the widest gap left is at most twice the even step's (ends always included)
            assert prefix[0] == 0 and prefix[-1] == n - 1
            assert max(gaps) <= 2 * -(-(n - 1) // (k - 1)), (n, k, prefix)


def test_success_rates_count_the_epochs_each_example_was_seen_in():
    log = SuccessLog(4)
    log.new_epoch()
    log.mark([0, 1, 2], [True, False, True])
    log.new_epoch()
    log.mark([0, 1, 2, 3], [True, True, False, False])
    assert log.rates() == [1.0, 0.5, 0.5, 0.0]


def test_subsets_keep_the_examples_not_yet_learned_largest_first():
    rates = [1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.0, 1.0]
    subsets = derive_subsets(rates)
    assert [s["max_rate"] for s in subsets] == [0.5, 0.0]
    assert [s["indices"] for s in subsets] == [[3, 4, 5, 7], [5, 7]]
    assert subsets[0]["fraction"] == pytest.approx(4 / 9)
    assert pick_subset(subsets)["max_rate"] == 0.5  # the winning ticket: the largest
    assert pick_subset(subsets, rule="smallest")["max_rate"] == 0.0
    assert pick_subset(subsets, rule="smallest", min_examples=3)["max_rate"] == 0.5
    assert pick_subset(subsets, min_examples=5) is None  # then the full set
    assert derive_subsets([1.0, 1.0]) == [] and pick_subset([]) is None
    assert summary(subsets, 9)[0] == {"max_rate": 0.5, "size": 4, "fraction": 0.444444, "of": 9}


def test_a_subset_must_fit_the_training_set():
    assert subset_of(3, None).tolist() == [0, 1, 2]
    assert subset_of(3, [2, 0]).tolist() == [2, 0]
    with pytest.raises(ValueError, match="in 0..2"):
        subset_of(3, [0, 3])
    with pytest.raises(ValueError, match="empty"):
        subset_of(3, [])
