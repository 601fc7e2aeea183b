from __future__ import annotations

import pytest
import torch

from surrogate import PREDICTORS
from surrogate.gp import GaussianProcess
from surrogate.mlp import MLPEnsemble
from tests.contracts.predictor import PredictorContract

torch.set_num_threads(1)


class TestMLPEnsemble(PredictorContract):
    @pytest.fixture
    def predictor_factory(self):
        return lambda: MLPEnsemble(members=5, hidden=32, epochs=300, seed=0)


class TestGaussianProcess(PredictorContract):
    @pytest.fixture
    def predictor_factory(self):
        return lambda: GaussianProcess(seed=0)


def test_registry_lists_and_builds_every_predictor():
    assert {"mlp_ensemble", "gp"} <= set(PREDICTORS.names())
    for name in PREDICTORS.names():
        assert PREDICTORS.get(name).name == name
    with pytest.raises(LookupError, match="allowed: .*gp"):
        PREDICTORS.get("nope")


def test_gp_rejects_unsupported_smoothness():
    with pytest.raises(ValueError, match="nu=1.0"):
        GaussianProcess(nu=1.0)
