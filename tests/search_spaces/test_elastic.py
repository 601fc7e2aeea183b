"""The elastic-op helpers every supernet shares (search_spaces/elastic.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from search_spaces.elastic import (
    importance_order,
    permute_,
    permute_batch_norm_,
    sliced_batch_norm,
    strongest_first,
    take,
)


def test_take_first_n_is_a_view_and_indices_select():
    t = torch.arange(12.0).reshape(3, 4)
    first = take(t, 2, 1)
    assert first.data_ptr() == t.data_ptr() and first.tolist() == [[0, 1], [4, 5], [8, 9]]
    assert take(t, torch.tensor([3, 0]), 1).tolist() == [[3, 0], [7, 4], [11, 8]]
    assert take(t, None, 0) is t


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("sel", [3, torch.tensor([1, 3, 4])])
def test_sliced_batch_norm_matches_a_batch_norm_of_the_slice(momentum, sel):
    torch.manual_seed(0)
    full = nn.BatchNorm2d(6, momentum=momentum)
    with torch.no_grad():
        full.weight.uniform_(0.5, 2)
        full.bias.uniform_(-1, 1)
    # an index selection reads copies, so only a first-n selection (a view) updates the running
    # statistics in place (search_spaces/elastic.py): the index case is checked in training only
    idx = torch.arange(sel) if isinstance(sel, int) else sel
    small = nn.BatchNorm2d(len(idx), momentum=momentum)
    small.load_state_dict({k: v[idx] if v.dim() else v.clone()
                           for k, v in full.state_dict().items()})
    if not isinstance(sel, int):
        x = torch.randn(4, len(idx), 5, 5)
        assert torch.allclose(sliced_batch_norm(x, full.train(), sel), small.train()(x),
                              atol=1e-6)
        assert torch.equal(full.running_mean, torch.zeros(6))  # a copy was updated, not ``full``
        return
    for step in range(3):
        x = torch.randn(4, len(idx), 5, 5)
        full.train(step < 2)
        small.train(step < 2)
        assert torch.allclose(sliced_batch_norm(x, full, sel), small(x), atol=1e-6)
    # the slice's running statistics moved exactly as the small module's; the rest did not
    assert torch.allclose(full.running_mean[idx], small.running_mean)
    assert torch.allclose(full.running_var[idx], small.running_var)
    rest = torch.tensor([i for i in range(6) if i not in idx.tolist()])
    assert torch.equal(full.running_mean[rest], torch.zeros(len(rest)))
    assert int(full.num_batches_tracked) == int(small.num_batches_tracked) == 2


def test_permute_moves_only_the_span():
    t = torch.arange(6.0)
    permute_(t, torch.tensor([2, 0, 1]), start=2)
    assert t.tolist() == [0, 1, 4, 2, 3, 5]
    w = torch.arange(6.0).reshape(2, 3)
    permute_(w, torch.tensor([2, 1, 0]), dim=1)
    assert w.tolist() == [[2, 1, 0], [5, 4, 3]]


def test_permuting_producer_and_consumer_together_keeps_the_function():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).eval()
    net[1].running_mean.uniform_(-1, 1)
    x = torch.randn(5, 4)
    before = net(x)
    order = importance_order(net[3].weight, dim=1)
    permute_(net[0].weight, order)
    permute_(net[0].bias, order)
    permute_batch_norm_(net[1], order)
    permute_(net[3].weight, order, dim=1)
    assert torch.allclose(net(x), before, atol=1e-6)
    # now sorted: a second ordering is the identity (stable sort)
    assert torch.equal(importance_order(net[3].weight, dim=1), torch.arange(8))


def test_strongest_first_is_stable_on_ties():
    assert strongest_first(torch.tensor([1.0, 3.0, 1.0, 3.0])).tolist() == [1, 3, 0, 2]
