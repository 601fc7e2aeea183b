"""Which architecture dimensions matter for each objective: Optuna's fANOVA importance evaluator
(a random forest's functional ANOVA decomposition, ``optuna.importance``) over a study's trials.

The trials are handed to an in-memory Optuna study as finished trials with one categorical
distribution per dimension, then ``get_param_importances`` runs once per objective with that
objective as the target. Nothing is computed by hand here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import TrialState

from service.engine.spec import StudySpec

#: fewer measured trials than this say nothing reliable about importance
MIN_TRIALS = 10
#: the forest's cost grows with the trials; an even subsample of this many keeps it interactive
MAX_TRIALS = 1000
METHOD = "fANOVA (optuna.importance.FanovaImportanceEvaluator, 64 trees, seed 0)"


def _choice(value: Any) -> Any:
    """A value Optuna's categorical distribution accepts (lists become their JSON text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def dimension_importance(spec: StudySpec, trials: Sequence[Any]) -> dict[str, Any]:
    """``{"method", "n_trials", "objectives": {key: {dimension: share}}}`` (shares sum to 1
    per objective), or ``"message"`` instead of objectives when there is too little to go on.
    ``trials``: rows with ``arch``, ``values``, ``state`` and ``info`` (ORM rows or records)."""
    keys = [o.key for o in spec.objectives]
    usable = [t for t in trials if t.state == "complete" and "duplicate_of" not in (t.info or {})
              and t.info.get("accuracy") != "predicted"
              and all(math.isfinite(t.values.get(k, math.nan)) for k in keys)]
    out: dict[str, Any] = {"method": METHOD, "n_trials": len(usable), "objectives": {}}
    if len(usable) < MIN_TRIALS:
        out["message"] = (f"{len(usable)} measured trial(s); importance needs at least "
                          f"{MIN_TRIALS}")
        return out
    if len(usable) > MAX_TRIALS:  # evenly spaced: early and late trials both represented
        step = len(usable) / MAX_TRIALS
        usable = [usable[int(i * step)] for i in range(MAX_TRIALS)]
        out["subsampled_to"] = MAX_TRIALS
    choices: dict[str, set] = {}
    for t in usable:
        for d, v in t.arch.items():
            choices.setdefault(d, set()).add(_choice(v))
    varied = {d: CategoricalDistribution(sorted(c, key=lambda v: (str(type(v)), v)))
              for d, c in choices.items() if len(c) > 1}
    if not varied:
        out["message"] = "no dimension took more than one value in these trials"
        return out
    study = optuna.create_study(directions=spec.directions)
    study.add_trials([
        optuna.trial.create_trial(
            params={d: _choice(t.arch[d]) for d in varied if d in t.arch},
            distributions={d: dist for d, dist in varied.items() if d in t.arch},
            values=[t.values[k] for k in keys], state=TrialState.COMPLETE)
        for t in usable
    ])
    for i, key in enumerate(keys):
        shares = optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0), params=sorted(varied),
            target=lambda ft, i=i: ft.values[i])
        out["objectives"][key] = {d: float(v) for d, v in shares.items()}
    return out
