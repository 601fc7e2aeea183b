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


def test_gp_warm_refit_keeps_hyperparameters_until_the_data_grows():
    import numpy as np

    from tests.contracts.predictor import target

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (80, 3))
    gp = GaussianProcess(reoptimize_growth=0.25)
    gp.fit(X[:40], target(X[:40]))
    theta = gp._gp.kernel_.theta.copy()
    gp.fit(X[:45], target(X[:45]))  # +12%: same hyperparameters, new data in the posterior
    np.testing.assert_array_equal(gp._gp.kernel_.theta, theta)
    mean, _ = gp.predict(X[40:45])
    np.testing.assert_allclose(mean, target(X[40:45]), atol=0.05)
    gp.fit(X[:60], target(X[:60]))  # +50%: tuned again
    assert not np.array_equal(gp._gp.kernel_.theta, theta)


def test_gp_retuning_escapes_a_degenerate_warm_start():
    """On one-hot encodings (distinct archs at least sqrt(2) apart) a fit on a few points can
    end at a length scale far below that distance: every point explains only itself and the
    likelihood's gradient vanishes. Re-tuning on plenty of structured data must not stay there
    just because it starts from that fit."""
    import numpy as np
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    choices = rng.integers(0, 5, (300, 4))
    X = np.concatenate([np.eye(5)[choices[:, j]] for j in range(4)], axis=1)
    y = (rng.normal(size=(4, 5))[np.arange(4), choices]).sum(axis=1)  # additive in the choices
    gp = GaussianProcess(seed=0)
    gp.fit(X[:10], y[:10])
    # The degenerate optimum the accuracy model sat in for whole studies on NAS-Bench-Graph.
    gp._gp.kernel_ = gp._gp.kernel_.clone_with_theta(np.log([0.99, 0.149, 0.01]))
    gp.fit(X[:150], y[:150])
    mean, _ = gp.predict(X[150:])
    assert kendalltau(mean, y[150:])[0] > 0.7
