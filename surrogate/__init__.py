"""Surrogate predictors, Pareto/hypervolume tools and the surrogate-assisted strategy.

``PREDICTORS`` maps names to ``Predictor`` classes, imported lazily (listing names must not
import torch); third-party predictors register through the ``paretonas.predictors`` entry point.
"""

from __future__ import annotations

from paretonas_core.registry import Registry

PREDICTORS: Registry = Registry("predictor", "paretonas.predictors")
PREDICTORS.register("mlp_ensemble", "surrogate.mlp:MLPEnsemble")
PREDICTORS.register("gp", "surrogate.gp:GaussianProcess")
