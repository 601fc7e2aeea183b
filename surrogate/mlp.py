"""An ensemble of small MLPs (torch): mean = ensemble mean, std = disagreement between members.

All members train at once as one batched network (weights shaped ``(members, in, out)``), so an
ensemble of 5 costs about as much as one MLP on a CPU. Each member sees its own bootstrap
resample of the data and its own initialisation; their disagreement grows away from the data,
which is what the surrogate strategy explores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from surrogate.base import Predictor, PredictorError, PredictorOptions, read_file_error


class MLPEnsembleOptions(PredictorOptions):
    members: int = Field(default=5, ge=2, le=64, description="ensemble size")
    hidden: int = Field(default=64, ge=1, le=4096, description="units per hidden layer")
    layers: int = Field(default=2, ge=1, le=8, description="hidden layers")
    epochs: int = Field(default=300, ge=1, le=100_000, description="full-batch Adam steps")
    lr: float = Field(default=1e-2, gt=0, le=1.0)
    weight_decay: float = Field(default=1e-4, ge=0, le=1.0)
    bootstrap: bool = Field(default=True, description="each member fits a bootstrap resample")
    seed: int = Field(default=0, ge=0)


class _BatchedMLP(torch.nn.Module):
    """``members`` independent MLPs evaluated with batched matmuls."""

    def __init__(self, members: int, n_in: int, hidden: int, layers: int, gen: torch.Generator):
        super().__init__()
        sizes = [n_in] + [hidden] * layers + [1]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)  # torch.nn.Linear's default init range
            w = (torch.rand(members, fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(members, 1, fan_out, generator=gen) * 2 - 1) * bound
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (members, n, in) -> (members, n)."""
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = torch.relu(x)
        return x.squeeze(-1)


class MLPEnsemble(Predictor):
    """Deep ensemble of small ReLU MLPs on standardised targets."""

    name = "mlp_ensemble"
    Options = MLPEnsembleOptions
    options: MLPEnsembleOptions

    def __init__(self, options=None, **kwargs):
        super().__init__(options, **kwargs)
        self._net: _BatchedMLP | None = None
        self._y_mean = 0.0
        self._y_std = 1.0

    def _new_net(self, n_features: int, gen: torch.Generator) -> _BatchedMLP:
        o = self.options
        return _BatchedMLP(o.members, n_features, o.hidden, o.layers, gen).double()

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = self.check_xy(X, y)
        o = self.options
        gen = torch.Generator().manual_seed(o.seed)
        self._y_mean = float(y.mean())
        self._y_std = float(y.std()) or 1.0
        xt = torch.from_numpy(X).unsqueeze(0).expand(o.members, -1, -1)
        yt = torch.from_numpy((y - self._y_mean) / self._y_std)
        n = len(y)
        if o.bootstrap:
            # Bootstrap as per-point multiplicities: same tensors for every member, no copies.
            idx = torch.randint(0, n, (o.members, n), generator=gen)
            weights = torch.zeros(o.members, n, dtype=torch.float64)
            weights.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
        else:
            weights = torch.ones(o.members, n, dtype=torch.float64)
        net = self._new_net(X.shape[1], gen)
        opt = torch.optim.Adam(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        for _ in range(o.epochs):
            opt.zero_grad(set_to_none=True)
            err = net(xt) - yt
            loss = (weights * err * err).sum() / weights.sum()
            loss.backward()
            opt.step()
        net.eval()
        self._net = net
        self.n_features = X.shape[1]

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = self.check_x(X)
        assert self._net is not None
        with torch.no_grad():
            out = self._net(torch.from_numpy(X).unsqueeze(0).expand(self.options.members, -1, -1))
        out = out.numpy() * self._y_std + self._y_mean
        return out.mean(axis=0), out.std(axis=0, ddof=1)

    def save(self, path: str | Path) -> None:
        if self._net is None or self.n_features is None:
            raise PredictorError(f"{self.name}: save() called before fit()")
        meta = {"name": self.name, "options": self.options.model_dump(),
                "n_features": self.n_features, "y_mean": self._y_mean, "y_std": self._y_std}
        torch.save({"meta": json.dumps(meta), "state": self._net.state_dict()}, path)

    @classmethod
    def load(cls, path: str | Path) -> MLPEnsemble:
        try:
            blob = torch.load(path, weights_only=True)  # weights_only: no code from the file
            meta = json.loads(blob["meta"])
            if meta.get("name") != cls.name:
                raise ValueError(f"file holds a {meta.get('name')!r} predictor, not {cls.name!r}")
            model = cls(meta["options"])
            net = model._new_net(int(meta["n_features"]), torch.Generator().manual_seed(0))
            net.load_state_dict(blob["state"])
        except PredictorError:
            raise
        except Exception as exc:  # torch/json raise many types for a bad file
            raise read_file_error(path, exc) from exc
        net.eval()
        model._net = net
        model.n_features = int(meta["n_features"])
        model._y_mean, model._y_std = float(meta["y_mean"]), float(meta["y_std"])
        return model
