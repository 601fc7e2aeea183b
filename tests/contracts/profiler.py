"""Reusable contract suite every Profiler meets (Optuna's ``testing/`` style).

Subclass it and provide a ``profiler`` fixture (fast settings):

    class TestMyProfiler(ProfilerContract):
        @pytest.fixture
        def profiler(self): return MyProfiler({"repeats": 3})

Set ``deterministic = True`` for profilers whose result does not vary between runs (models,
simulators): then two measurements must agree exactly.
"""

from __future__ import annotations

import math
import statistics
from typing import ClassVar

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from evaluators.profilers import PROFILERS
from evaluators.profilers.base import LatencyResult, Profiler, ProfilerError


def small_cnn(width: int = 8) -> nn.Module:
    """A few conv layers with batch norm, a depthwise conv, a residual add and a classifier."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False),
                                      nn.BatchNorm2d(width), nn.ReLU())
            self.dw = nn.Conv2d(width, width, 3, 1, 1, groups=width)
            self.pw = nn.Conv2d(width, width, 1)
            self.head = nn.Linear(width, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stem(x)
            x = x + self.pw(torch.relu(self.dw(x)))
            return self.head(x.mean(dim=(2, 3)))

    return Net().eval()


class TokenNet(nn.Module):
    """Takes keyword inputs like a BERT subnet: token ids and an attention mask."""

    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.proj(self.embed(input_ids)) * attention_mask.unsqueeze(-1)
        scores = torch.softmax(h @ h.transpose(1, 2), dim=-1)
        return self.out((scores @ h).mean(dim=1))


class Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ torch.ones(5, 7)  # wrong shape for the example input


def image(res: int = 32) -> torch.Tensor:
    return torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(0))


class ProfilerContract:
    deterministic: ClassVar[bool] = False

    @pytest.fixture
    def profiler(self) -> Profiler:  # pragma: no cover - subclasses override
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _one_thread(self):
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(old)

    def check_result(self, profiler: Profiler, result: LatencyResult) -> None:
        assert isinstance(result, LatencyResult)
        assert math.isfinite(result.latency_ms) and result.latency_ms > 0
        assert result.samples_ms, "a result records its samples"
        # the reported latency is the median of the samples, or their minimum where the
        # result says it used method "min"
        statistic = min if result.details.get("method") == "min" else statistics.median
        assert result.latency_ms == pytest.approx(statistic(result.samples_ms))
        assert set(result.all_metrics()) == set(profiler.metric_names())
        assert all(math.isfinite(v) for v in result.all_metrics().values())

    # --- identity and settings --------------------------------------------------------------
    def test_name_version_and_registry(self, profiler: Profiler) -> None:
        assert isinstance(profiler.name, str) and profiler.name
        assert isinstance(profiler.version, str) and profiler.version
        assert profiler.metric_names()[0] == "latency_ms"
        if profiler.name in PROFILERS:
            assert PROFILERS.get(profiler.name) is type(profiler)

    def test_unknown_setting_is_rejected(self, profiler: Profiler) -> None:
        with pytest.raises(ValidationError, match="no_such_setting"):
            type(profiler)({"no_such_setting": 1})

    def test_settings_round_trip(self, profiler: Profiler) -> None:
        again = type(profiler)(profiler.settings.model_dump())
        assert again.settings == profiler.settings

    # --- measuring --------------------------------------------------------------------------
    def test_measures_a_cnn(self, profiler: Profiler) -> None:
        self.check_result(profiler, profiler.measure(small_cnn(), image()))

    def test_measures_keyword_inputs(self, profiler: Profiler) -> None:
        inputs = {"input_ids": torch.randint(0, 50, (1, 12)), "attention_mask": torch.ones(1, 12)}
        self.check_result(profiler, profiler.measure(TokenNet().eval(), inputs))

    def test_leaves_the_model_as_it_was(self, profiler: Profiler) -> None:
        model = small_cnn()
        model.train()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        profiler.measure(model, image())
        assert all(m.training for m in model.modules())
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)

    def test_bigger_model_is_slower(self, profiler: Profiler) -> None:
        # ~60x the MACs: the order must hold even on a noisy host
        small = profiler.measure(small_cnn(4), image(32)).latency_ms
        big = profiler.measure(small_cnn(48), image(96)).latency_ms
        assert big > small

    def test_failing_model_raises_profiler_error(self, profiler: Profiler) -> None:
        with pytest.raises(ProfilerError):
            profiler.measure(Broken(), image())

    def test_deterministic_profilers_repeat_exactly(self, profiler: Profiler) -> None:
        if not self.deterministic:
            pytest.skip("a measuring profiler varies between runs")
        a = profiler.measure(small_cnn(), image())
        b = profiler.measure(small_cnn(), image())
        assert a.all_metrics() == b.all_metrics()
