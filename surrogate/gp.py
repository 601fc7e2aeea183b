"""Gaussian-process predictor (scikit-learn): exact posterior mean and std.

Kernel: constant x Matern(5/2) + white noise, hyperparameters by marginal likelihood. On one-hot
and [0, 1] ordinal encodings a Matern kernel behaves like a smooth Hamming-distance kernel, which
suits categorical architecture spaces. Saved as ``.npz`` (training data + fitted kernel
hyperparameters), never as a pickle; loading refits with the hyperparameters fixed, which
reproduces the posterior exactly.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from pydantic import Field
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel

from surrogate.base import Predictor, PredictorError, PredictorOptions, read_file_error


class GPOptions(PredictorOptions):
    ard: bool = Field(default=False, description="one length scale per feature")
    nu: float = Field(default=2.5, description="Matern smoothness: 0.5, 1.5, 2.5 or inf")
    restarts: int = Field(default=0, ge=0, le=20, description="optimizer restarts")
    noise: float = Field(default=1e-2, gt=0, le=10.0, description="initial noise level")
    seed: int = Field(default=0, ge=0)
    warm_start: bool = Field(
        default=True, description="refits start from the previous fit's hyperparameters"
    )
    reoptimize_growth: float = Field(
        default=0.25, ge=0, le=10,
        description="with warm_start: re-tune hyperparameters only once the data has grown by "
        "this fraction since they were last tuned (else keep them: one Cholesky per fit)",
    )
    tune_on: int = Field(
        default=200, ge=10, le=100_000,
        description="tune hyperparameters on a random subset of at most this many points (the "
        "posterior still uses all of them): each likelihood step is cubic in the points",
    )


class GaussianProcess(Predictor):
    """scikit-learn ``GaussianProcessRegressor`` with a Matern kernel and learnt noise."""

    name = "gp"
    Options = GPOptions
    options: GPOptions

    def __init__(self, options=None, **kwargs):
        super().__init__(options, **kwargs)
        if self.options.nu not in (0.5, 1.5, 2.5, float("inf")):
            raise PredictorError(f"nu={self.options.nu}: allowed 0.5, 1.5, 2.5 or inf")
        self._gp: GaussianProcessRegressor | None = None
        self._tuned_on = 0  # training-set size when the hyperparameters were last tuned

    def _kernel(self, n_features: int) -> Kernel:
        scale = np.ones(n_features) if self.options.ard else 1.0
        return ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=scale, length_scale_bounds=(1e-2, 1e3), nu=self.options.nu
        ) + WhiteKernel(self.options.noise, (1e-6, 1.0))

    def _regressor(self, kernel: Kernel, *, optimize: bool) -> GaussianProcessRegressor:
        return GaussianProcessRegressor(
            kernel=kernel, normalize_y=True, optimizer="fmin_l_bfgs_b" if optimize else None,
            n_restarts_optimizer=self.options.restarts, random_state=self.options.seed,
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = self.check_xy(X, y)
        starts, optimize = [self._kernel(X.shape[1])], True
        if self.options.warm_start and self._gp is not None and self.n_features == X.shape[1]:
            # A refit on a few more points (the surrogate refits every batch): the last optimum
            # is a good start, and hyperparameters barely move until the data grows markedly,
            # so most refits are a single O(n^3) solve instead of dozens.
            optimize = len(y) >= (1 + self.options.reoptimize_growth) * self._tuned_on
            # Re-tuning also starts from the default kernel and keeps the likelier fit: from a
            # few points the optimum can be degenerate (length scale far below the distance
            # between any two archs, i.e. "everything is noise"), where the gradient vanishes,
            # so a warm start alone would stay there for the whole study.
            warm = [self._gp.kernel_]
            starts = warm + starts if optimize else warm
        Xt, yt = X, y
        if optimize and len(y) > self.options.tune_on:
            rng = np.random.default_rng(self.options.seed + len(y))
            keep = rng.choice(len(y), size=self.options.tune_on, replace=False)
            Xt, yt = X[keep], y[keep]
        best: GaussianProcessRegressor | None = None
        with warnings.catch_warnings():
            # Hitting a bound (e.g. the noise floor on noise-free data) is fine here.
            warnings.simplefilter("ignore", ConvergenceWarning)
            for kernel in starts:
                gp = self._regressor(kernel, optimize=optimize).fit(Xt, yt)
                if best is None or (
                    gp.log_marginal_likelihood_value_ > best.log_marginal_likelihood_value_
                ):
                    best = gp
            assert best is not None
            if Xt is not X:  # tuned on a subset: condition on every point, kernel fixed
                best = self._regressor(best.kernel_, optimize=False).fit(X, y)
        self._gp = best
        self.n_features = X.shape[1]
        if optimize:
            self._tuned_on = len(y)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = self.check_x(X)
        assert self._gp is not None
        mean, std = self._gp.predict(X, return_std=True)
        return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)

    def save(self, path: str | Path) -> None:
        if self._gp is None:
            raise PredictorError(f"{self.name}: save() called before fit()")
        meta = {"name": self.name, "options": self.options.model_dump()}
        with open(path, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), X=self._gp.X_train_,
                     y=self._gp.y_train_ * self._gp._y_train_std + self._gp._y_train_mean,
                     theta=self._gp.kernel_.theta)

    @classmethod
    def load(cls, path: str | Path) -> GaussianProcess:
        try:
            with np.load(path, allow_pickle=False) as blob:
                meta = json.loads(str(blob["meta"]))
                X, y, theta = blob["X"], blob["y"], blob["theta"]
            if meta.get("name") != cls.name:
                raise ValueError(f"file holds a {meta.get('name')!r} predictor, not {cls.name!r}")
            model = cls(meta["options"])
            kernel = model._kernel(X.shape[1]).clone_with_theta(theta)
            gp = model._regressor(kernel, optimize=False)
            gp.fit(X, y)
        except PredictorError:
            raise
        except Exception as exc:  # numpy/zip/json raise many types for a bad file
            raise read_file_error(path, exc) from exc
        model._gp = gp
        model.n_features = X.shape[1]
        return model
