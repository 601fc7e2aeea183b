"""Reusable contract suite every search ``Strategy`` meets (Optuna's ``testing/`` style).

Subclass it and provide a ``strategy`` fixture returning the strategy with small options:

    class TestMyStrategy(StrategyContract):
        @pytest.fixture
        def strategy(self): return MyStrategy({"population_size": 4})

The strategy runs the way the ``StudyRunner`` drives it: an Optuna study over its sampler,
asked with the space's distributions (restricted for a two-stage study's stages) and told the
table's values (a missing row fails the trial), resumed by rebuilding the study from history.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from search_spaces.table import TableSpace
from service.engine.strategies import Strategy

OPS = ("conv", "pool", "skip", "attn")
DIRECTIONS = ["maximize", "minimize"]
BUDGET = 24


def write_grid(path: Path) -> Path:
    """288 archs minus a few missing rows; accuracy and latency both grow with size."""
    rows = []
    for k, (depth, op, width, kernel) in enumerate(
            itertools.product(range(1, 7), OPS, (8, 16, 32, 64), (1, 3, 5))):
        if k % 23 == 5:
            continue  # a missing row: such an arch fails its trial
        acc = 0.5 + 0.05 * depth + 0.02 * OPS.index(op) + width / 400 - 0.01 * abs(kernel - 3)
        lat = depth * width / 8 * (1 + OPS.index(op) / 3) + 0.1 * kernel
        rows.append({"depth": depth, "op": op, "width": width, "kernel": kernel,
                     "acc": round(acc, 5), "latency_ms": round(lat, 5)})
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def key_of(params: dict) -> tuple:
    return tuple(params[n] for n in ("depth", "op", "width", "kernel"))


class StrategyContract:
    @pytest.fixture
    def strategy(self) -> Strategy:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def space(cls, tmp_path_factory) -> TableSpace:
        root = tmp_path_factory.mktemp("strategy-contract")
        write_grid(root / "grid.csv")
        mp = pytest.MonkeyPatch()
        mp.setenv("PARETONAS_DATA_DIRS", str(root))
        yield TableSpace({"path": "grid.csv", "params": ["depth", "op", "width", "kernel"]})
        mp.undo()

    # --- driving the strategy as the runner does ----------------------------------------------
    def distributions(self, space, **restricted) -> dict[str, CategoricalDistribution]:
        dists = {n: CategoricalDistribution(list(d.choices))
                 for n, d in space.dimensions().items()}
        dists.update({n: CategoricalDistribution(list(c)) for n, c in restricted.items()})
        return dists

    def new_study(self, strategy, space, *, seed: int, history=()) -> optuna.Study:
        sampler = strategy.make_sampler(seed=seed, context={"space": space,
                                                            "objectives": ["acc", "latency_ms"]})
        study = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
        for trial in history:
            study.add_trial(trial)
        return study

    def tell(self, study, space, trial) -> None:
        row = space.table.lookup.get(key_of(trial.params))
        if row is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, [row["acc"], row["latency_ms"]])

    def run(self, strategy, space, *, seed: int = 0, trials: int = BUDGET, history=(),
            dists=None) -> tuple[optuna.Study, list[tuple], list]:
        """Ask and tell ``trials`` times; returns the study, the proposals and explanations."""
        study = self.new_study(strategy, space, seed=seed, history=history)
        dists = dists or self.distributions(space)
        asked, why = [], []
        for _ in range(trials):
            trial = study.ask(dists)
            asked.append(key_of(trial.params))
            why.append(strategy.explain(study.sampler, trial.number))
            self.tell(study, space, trial)
        return study, asked, why

    # --- the contract -------------------------------------------------------------------------
    def test_same_seed_same_trials(self, strategy, space):
        assert self.run(strategy, space, seed=5)[1] == self.run(strategy, space, seed=5)[1]

    def test_proposals_stay_inside_restricted_dimensions(self, strategy, space):
        dists = self.distributions(space, op=["conv", "attn"], depth=[4, 5, 6], kernel=[3])
        _, asked, _ = self.run(strategy, space, dists=dists)
        for depth, op, _, kernel in asked:
            assert op in ("conv", "attn") and depth >= 4 and kernel == 3

    def test_resumes_from_its_history(self, strategy, space):
        """A study rebuilt from finished trials (as the runner resumes one) goes on from them:
        the same proposals for the same history and seed, inside the space."""
        study, _, _ = self.run(strategy, space, trials=BUDGET // 2)
        history = study.get_trials(deepcopy=True)
        first = self.run(strategy, space, seed=100, trials=BUDGET // 2, history=history)
        again = self.run(strategy, space, seed=100, trials=BUDGET // 2, history=history)
        assert first[1] == again[1]
        assert len(first[0].trials) == BUDGET
        choices = {n: set(d.choices) for n, d in space.dimensions().items()}
        assert all(v in choices[n] for key in first[1]
                   for n, v in zip(("depth", "op", "width", "kernel"), key, strict=True))

    def test_never_proposes_a_measured_failed_or_pending_arch(self, strategy, space):
        if not strategy.unique_proposals:
            pytest.skip(f"{strategy.name}: an Optuna sampler may repeat an arch (the runner "
                        "reuses the first trial's values)")
        study, asked, _ = self.run(strategy, space)
        assert len(set(asked)) == len(asked), "an arch was proposed twice"
        dists = self.distributions(space)
        pending = [study.ask(dists) for _ in range(4)]  # parallel workers: asks before tells
        keys = [key_of(t.params) for t in pending]
        assert len(set(keys)) == 4 and not set(keys) & set(asked)
        finished = [t for t in study.get_trials(deepcopy=True) if t.state.is_finished()]
        resumed = self.run(strategy, space, seed=50, trials=8, history=finished)[1]
        assert not set(resumed) & set(asked), "a resumed study re-proposed a measured arch"

    def test_explanations_and_model_quality_are_json(self, strategy, space):
        study, _, why = self.run(strategy, space)
        for item in why:
            assert item is None or isinstance(item, dict)
        json.dumps(why)
        quality = strategy.model_quality(study.sampler)
        assert quality is None or isinstance(quality, dict)
        json.dumps(quality)
