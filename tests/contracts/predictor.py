"""Reusable contract suite every Predictor meets (Optuna's ``testing/`` style).

Subclass it and provide a ``predictor_factory`` fixture returning a fresh, small, seeded
predictor:

    class TestMyPredictor(PredictorContract):
        @pytest.fixture
        def predictor_factory(self): return lambda: MyPredictor(seed=0)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from surrogate.base import Predictor, PredictorError


def target(X: np.ndarray) -> np.ndarray:
    """A smooth known function of 3 features in [0, 1]."""
    return np.sin(3.0 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2]


def rmse(p: Predictor, X: np.ndarray) -> float:
    mean, _ = p.predict(X)
    return float(np.sqrt(np.mean((mean - target(X)) ** 2)))


class PredictorContract:
    @pytest.fixture
    def predictor_factory(self) -> Callable[[], Predictor]:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        train = rng.uniform(0, 1, (160, 3))
        test = rng.uniform(0, 1, (300, 3))
        return train, test

    def test_predict_shapes_and_finite(self, predictor_factory, data) -> None:
        train, test = data
        p = predictor_factory()
        p.fit(train[:30], target(train[:30]))
        mean, std = p.predict(test)
        assert mean.shape == std.shape == (len(test),)
        assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std >= 0)

    def test_fit_improves_with_data(self, predictor_factory, data) -> None:
        train, test = data
        errors = []
        for n in (8, 40, 160):
            p = predictor_factory()
            p.fit(train[:n], target(train[:n]))
            errors.append(rmse(p, test))
        assert errors[2] < errors[1] < errors[0], errors
        assert errors[2] < 0.25 * float(np.std(target(test))), errors

    def test_std_is_larger_far_from_data(self, predictor_factory, data) -> None:
        train, _ = data
        # Train on one corner of the cube; ask inside it and far outside.
        near_train = train[:60] * 0.5
        p = predictor_factory()
        p.fit(near_train, target(near_train))
        _, std_near = p.predict(near_train[:20])
        _, std_far = p.predict(np.full((5, 3), 3.0))
        assert std_far.min() > 2.0 * std_near.mean(), (std_far, std_near.mean())

    def test_save_load_round_trip(self, predictor_factory, data, tmp_path) -> None:
        train, test = data
        p = predictor_factory()
        p.fit(train[:40], target(train[:40]))
        p.save(tmp_path / "model.bin")
        q = type(p).load(tmp_path / "model.bin")
        for a, b in zip(p.predict(test), q.predict(test), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)

    def test_load_rejects_a_bad_file(self, predictor_factory, tmp_path) -> None:
        bad = tmp_path / "bad.bin"
        bad.write_bytes(b"not a model")
        with pytest.raises(PredictorError, match="cannot load predictor"):
            type(predictor_factory()).load(bad)

    def test_bad_inputs_are_named(self, predictor_factory, data) -> None:
        train, _ = data
        p = predictor_factory()
        with pytest.raises(PredictorError, match="before fit"):
            p.predict(train[:3])
        with pytest.raises(PredictorError, match="rows"):
            p.fit(train[:10], target(train[:9]))
        with pytest.raises(PredictorError, match="NaN"):
            p.fit(train[:10], np.r_[target(train[:9]), np.nan])
        with pytest.raises(PredictorError, match="shape"):
            p.fit(train[0], target(train[:1]))
        p.fit(train[:10], target(train[:10]))
        with pytest.raises(PredictorError, match="features"):
            p.predict(train[:3, :2])

    def test_unknown_option_is_rejected(self, predictor_factory) -> None:
        with pytest.raises(Exception, match="colour"):
            type(predictor_factory())(colour="red")
