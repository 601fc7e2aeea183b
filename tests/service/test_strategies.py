"""Every built-in strategy meets the strategy contract (tests/contracts/strategy.py)."""

from __future__ import annotations

import pytest

from service.engine.strategies import STRATEGIES
from tests.contracts.strategy import StrategyContract


def test_every_built_in_strategy_is_tested_here():
    tested = {cls.name for cls in (TestRandom, TestNSGA2, TestNSGA3, TestTPE, TestGP,
                                         TestSurrogate)}
    assert tested == set(STRATEGIES.names())


class TestRandom(StrategyContract):
    name = "random"

    @pytest.fixture
    def strategy(self):
        return STRATEGIES.get("random")()


class TestNSGA2(StrategyContract):
    name = "nsga2"

    @pytest.fixture
    def strategy(self):
        return STRATEGIES.get("nsga2")({"population_size": 6})


class TestNSGA3(StrategyContract):
    name = "nsga3"

    @pytest.fixture
    def strategy(self):
        return STRATEGIES.get("nsga3")({"population_size": 6})


class TestTPE(StrategyContract):
    name = "tpe"

    @pytest.fixture
    def strategy(self):
        return STRATEGIES.get("tpe")({"n_startup_trials": 6})


class TestGP(StrategyContract):
    name = "gp"

    @pytest.fixture
    def strategy(self):
        return STRATEGIES.get("gp")({"n_startup_trials": 6})


class TestSurrogate(StrategyContract):
    name = "surrogate"

    @pytest.fixture
    def strategy(self):
        # the default opening (Optuna's GPSampler) for trials 6-11, then the surrogate
        return STRATEGIES.get("surrogate")({"n_initial": 6, "opening_trials": 12,
                                            "batch_size": 3, "n_random": 60, "generations": 1})

    def test_explains_each_proposal_and_reports_model_quality(self, strategy, space):
        study, _, why = self.run(strategy, space)
        assert [w["source"] for w in why[:12]] == ["initial"] * 6 + ["gp-opening"] * 6
        picked = [w for w in why[12:] if w["source"] == "surrogate"]
        assert picked and all(len(w["predicted"]) == 2 for w in picked)
        assert set(strategy.model_quality(study.sampler)) == {"acc", "latency_ms"}
