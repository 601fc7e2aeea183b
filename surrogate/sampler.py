"""``SurrogateSampler``: the surrogate-assisted strategy as an Optuna sampler.

Each round it fits one predictor per objective on the measured (complete) trials, scores a pool
of unseen archs (random archs, one-step mutations of the best measured archs, then mutations of
the best-scoring candidates: a short evolutionary search over the *predicted* objectives), and
queues a batch chosen by optimistic hypervolume improvement (``surrogate.acquisition``). Asks pop
the queue; it never proposes an arch that is already measured, failed or pending, so parallel
workers (asks before tells) get distinct archs, and pending archs enter the batch selection as
fantasies at their predicted means. The first ``n_initial`` archs are uniform random
(``initial_design`` "random") or a covering design ("covering": every choice of every dimension
shown early); until ``early_batch`` archs are measured each refit picks one arch, then
``batch_size``. With ``opening`` "gp" (the strategy's default) Optuna's GPSampler proposes
after the initial design until ``opening_trials`` archs are measured: a GP refitted every trial
with log-EHVI is the strongest method at 50 evaluations, the surrogate's batches past that
(``surrogate/RESULTS.md``); its proposals are repaired to unseen evaluable archs.
Constraints (Optuna's per-trial constraint values, as the runner sets them) are modelled too:
one predictor per constraint, and each candidate's hypervolume improvement is weighted by its
predicted probability of satisfying all of them (as constrained EHVI does); the front, the
reference and the parents come from feasible trials (until there is one, the candidates most
likely feasible are chosen).
The batch rule's hypervolume reference (``reference``), the units it is measured in
(``hv_units``) and whether a batch spreads along the front (``spread``) are options; what each
did on NAS-Bench-Graph is in ``surrogate/RESULTS.md``.

Objectives are modelled on a log scale when every observed value is positive and spans more than
a factor of ``log_ratio`` (latency, params, MACs), since such costs vary multiplicatively.
With ``warp`` "rank" (the default) the predictors then fit normal scores of each objective's
ranks, not its values: NAS tables hold far-out archs (chance-level accuracy) that a stationary
GP otherwise spends its variance on, flattening its ranking of the accurate end. Acquisition and
reported predictions map back through the inverse warp. On NAS-Bench-Graph this removed every
median loss against NSGA-II; on a smooth, noise-free toy table fitting the raw values (``warp``
"none") finds more of the front (``surrogate/RESULTS.md``).

Predictor quality is measured prospectively: before each refit the previous round's models
predict the trials measured since, which none of them was fitted on; ``quality()`` reports
Kendall tau and RMSE over a window of those held-out pairs.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm, rankdata

from surrogate import PREDICTORS
from surrogate.acquisition import epsilon_to_front, front_reference, select_batch
from surrogate.base import Predictor
from surrogate.candidates import ArchSpace, Index, IndexedSpace, candidate_pool
from surrogate.pareto import crowding_distance, loss_signs, pareto_mask
from surrogate.quality import prediction_quality

logger = logging.getLogger(__name__)


REFERENCES = ("median", "nadir", "front")  # hypervolume references of the batch selection
WARPS = ("rank", "none")  # target transforms before the fit
INITIAL_DESIGNS = ("random", "covering")  # how the first n_initial archs are drawn
OPENINGS = ("own", "gp")  # who proposes until opening_trials archs are measured


class SurrogateSampler(optuna.samplers.BaseSampler):
    """Surrogate-assisted multi-objective sampler over a search space (see module doc).

    ``explain(number)`` says why a trial's arch was chosen and what was predicted for it;
    ``quality()`` how well the predictors rank held-out trials."""

    def __init__(
        self,
        space: ArchSpace,
        *,
        predictor: str = "gp",
        predictor_options: dict[str, Any] | None = None,
        n_initial: int = 10,
        batch_size: int = 5,
        kappa: float = 1.0,
        n_random: int = 500,
        n_parents: int = 10,
        generations: int = 2,
        log_ratio: float = 10.0,
        reference: str = "front",
        hv_units: str = "model",
        spread: bool = False,
        extremes: bool = False,
        warp: str = "rank",
        initial_design: str = "random",
        early_batch: int = 0,
        min_feasibility: float = 0.5,
        opening: str = "own",
        opening_trials: int = 50,
        quality_window: int = 100,
        objective_names: Sequence[str] | None = None,
        seed: int | None = None,
    ):
        self.ispace = IndexedSpace(space)
        self.predictor_cls = PREDICTORS.get(predictor)
        self.predictor_options = dict(predictor_options or {})
        self.predictor_cls(self.predictor_options)  # validate options now, not mid-study
        self.n_initial = n_initial
        self.batch_size = batch_size
        self.kappa = kappa
        self.n_random = n_random
        self.n_parents = n_parents
        self.generations = generations
        self.log_ratio = log_ratio
        if reference not in REFERENCES:
            raise ValueError(f"reference={reference!r}; allowed: {', '.join(REFERENCES)}")
        self.reference = reference
        if hv_units not in ("model", "objective"):
            raise ValueError(f"hv_units={hv_units!r}; allowed: model, objective")
        self.hv_units = hv_units
        self.spread = spread
        self.extremes = extremes
        if warp not in WARPS:
            raise ValueError(f"warp={warp!r}; allowed: {', '.join(WARPS)}")
        self.warp = warp
        if initial_design not in INITIAL_DESIGNS:
            raise ValueError(f"initial_design={initial_design!r}; allowed: "
                             f"{', '.join(INITIAL_DESIGNS)}")
        self.initial_design = initial_design
        if early_batch < 0:
            raise ValueError(f"early_batch={early_batch}: must be >= 0")
        self.early_batch = early_batch
        if not 0.0 <= min_feasibility <= 1.0:
            raise ValueError(f"min_feasibility={min_feasibility}: must be in [0, 1]")
        self.min_feasibility = min_feasibility
        if opening not in OPENINGS:
            raise ValueError(f"opening={opening!r}; allowed: {', '.join(OPENINGS)}")
        if opening_trials < 0:
            raise ValueError(f"opening_trials={opening_trials}: must be >= 0")
        self.opening_trials = opening_trials
        # Optuna's GPSampler proposes until ``opening_trials`` archs are measured ("gp"); its
        # own startup is our initial design, so it models from the first trial it is asked.
        self._opening = (optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=n_initial, warn_independent_sampling=False)
            if opening == "gp" else None)
        self._warps: list[tuple[np.ndarray, np.ndarray]] = []  # per objective: (z, loss) sorted
        self.objective_names = list(objective_names) if objective_names else None
        self._rng = np.random.default_rng(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._lock = threading.Lock()
        self._first: tuple[int, dict[str, Any]] | None = None
        self._queue: deque[tuple[Index, dict[str, Any]]] = deque()
        self._fitted_on: set[int] = set()  # trial numbers of the last fit
        self._models: list[Predictor] | None = None
        self._cmodels: list[Predictor] = []  # one per constraint of the study
        self._logs: list[bool] = []
        self._pairs: list[deque[tuple[float, float]]] = []
        self._window = quality_window
        self.rounds = 0
        self.distributions = {
            n: CategoricalDistribution(list(d.choices)) for n, d in self.ispace.dims.items()
        }
        self._why: dict[int, dict[str, Any]] = {}  # trial number -> how its arch was chosen

    # --- Optuna sampler interface -------------------------------------------------------------
    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()
        if self._opening is not None:
            self._opening.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._current_distributions(study, trial)

    def _current_distributions(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """The distributions of the study's latest trial, which may restrict the choices (the
        runner's second stage asks within a subset of each dimension). With no trial yet there
        is nothing to go on: {} makes Optuna draw the first arch at random from whatever
        distributions the caller passes (``sample_independent``)."""
        for t in reversed(study.get_trials(deepcopy=False)):
            if t.number != trial.number and set(t.distributions) >= set(self.distributions):
                dists = {n: t.distributions[n] for n in self.distributions}
                if all(isinstance(d, CategoricalDistribution) for d in dists.values()):
                    return dists
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        with self._lock:
            self.ispace.restrict(self._allowed(search_space))
            idx, info = self._next(study, trial, search_space)
            self._why[trial.number] = info
        return self.ispace.params(idx)

    def _allowed(self, search_space: dict[str, BaseDistribution]) -> list[list[int]]:
        """The study's distributions as allowed choice indices per dimension."""
        allowed = []
        for j, name in enumerate(self.ispace.names):
            choices = search_space[name].choices  # type: ignore[attr-defined]
            found = [self.ispace.index_of_choice(j, c) for c in choices]
            allowed.append(sorted(i for i in found if i is not None))
        return allowed

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: Any
    ) -> Any:
        # Reached for a study's first trial (no distributions known yet) and for parameters
        # outside the space. The first trial takes a random evaluable arch, dimension by
        # dimension, unless the caller's distribution excludes its value.
        if param_name in self.distributions and isinstance(
            param_distribution, CategoricalDistribution
        ):
            with self._lock:
                if self._first is None or self._first[0] != trial.number:
                    self._first = (trial.number, self.ispace.params(self._random_unknown(set())))
                    self._why[trial.number] = {"source": "initial"}
            value = self._first[1][param_name]
            if value in param_distribution.choices:
                return value
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # --- what the strategy reports -----------------------------------------------------------
    def explain(self, number: int) -> dict[str, Any] | None:
        """Why trial ``number``'s arch was chosen ("source": initial, surrogate or random) and,
        for surrogate picks, the round, rank and predicted values; once per trial."""
        with self._lock:
            return self._why.pop(number, None)

    def quality(self) -> dict[str, dict[str, float | int | None]]:
        """Per objective: Kendall tau and RMSE of predictions on held-out measured trials."""
        names = self.objective_names or [f"objective_{i}" for i in range(len(self._pairs))]
        return {
            name: prediction_quality(np.array(pairs).reshape(-1, 2))
            for name, pairs in zip(names, self._pairs, strict=False)
        }

    # --- the strategy -----------------------------------------------------------------------
    def _next(self, study: Study, trial: FrozenTrial,
              search_space: dict[str, BaseDistribution]) -> tuple[Index, dict[str, Any]]:
        trials = study.get_trials(deepcopy=False)
        known: set[Index] = set()
        measured: list[tuple[FrozenTrial, Index]] = []
        pending: list[Index] = []
        for t in trials:
            if t.number == trial.number:
                continue
            idx = self.ispace.index_of(t.params)
            if idx is None:
                continue
            known.add(idx)
            if t.state == TrialState.COMPLETE and t.values is not None:
                measured.append((t, idx))
            elif t.state in (TrialState.RUNNING, TrialState.WAITING):
                pending.append(idx)
        if len(measured) < self.n_initial:
            return self._initial(known), {"source": "initial"}
        if self._opening is not None and len(measured) < self.opening_trials:
            picked = self._opening_pick(study, trial, search_space, known)
            if picked is not None:
                return picked, {"source": "gp-opening"}
        stale = len({t.number for t, _ in measured} - self._fitted_on) >= self._batch(
            len(measured))
        if stale or not self._queue:
            self._round(study, measured, pending, known)
        while self._queue:
            idx, info = self._queue.popleft()
            if idx not in known and self.ispace.contains(idx):
                return idx, info
        return self._random_unknown(known), {"source": "random"}

    def _opening_pick(self, study: Study, trial: FrozenTrial,
                      search_space: dict[str, BaseDistribution],
                      known: set[Index]) -> Index | None:
        """The opening sampler's proposal (``opening`` "gp"), repaired to the nearest arch
        that is evaluable, allowed and not yet seen: Optuna's GPSampler proposes on the full
        grid and may repeat an arch. (A study's distributions never change, so every measured
        arch lies inside the ones GPSampler is asked with; a second stage is its own study.)"""
        assert self._opening is not None
        params = self._opening.sample_relative(study, trial, search_space)
        idx = self.ispace.index_of(params) if params else None
        if idx is None:
            return None
        return self._nearest_unknown(idx, known)

    def _nearest_unknown(self, idx: Index, known: set[Index]) -> Index:
        """``idx`` if it is evaluable, allowed and unseen, else the unseen arch differing from
        it in the fewest dimensions (ties at random)."""
        if idx not in known and self.ispace.evaluable(idx):
            return idx
        members = self.ispace.universe
        if members is None:  # the full grid: the unseen allowed archs one dimension away
            near = [i for i in self.ispace.neighbours(idx)
                    if i not in known and self.ispace.contains(i)]
            return near[int(self._rng.integers(len(near)))] if near else \
                self._random_unknown(known)
        rest = np.array([i for i in members if i not in known])
        if not len(rest):
            return self._random_unknown(known)
        differing = (rest != np.array(idx)).sum(axis=1)
        ties = np.flatnonzero(differing == differing.min())
        return tuple(int(v) for v in rest[int(self._rng.choice(ties))])

    def _batch(self, n_measured: int) -> int:
        """Archs per refit: one while fewer than ``early_batch`` are measured (each pick sees
        every result so far, which matters most when there are few), then ``batch_size``."""
        return 1 if n_measured < self.early_batch else self.batch_size

    def _initial(self, known: set[Index]) -> Index:
        """An arch of the initial design. "random": uniform. "covering": of 64 random unseen
        archs, the one showing the most choices not yet in the design (per dimension), ties
        broken by the largest Hamming distance to the design's archs: a space-filling design
        for categorical dimensions (every choice seen early, as a Latin hypercube would), which
        also works on a table whose rows are not the full product of the choices."""
        if self.initial_design == "random":
            return self._random_unknown(known)
        design = [i for i in known if self.ispace.contains(i)]
        cands = list(dict.fromkeys(i for i in self.ispace.random(self._rng, 64)
                                   if i not in known))
        if not cands:
            return self._random_unknown(known)
        C = np.array(cands)
        if not design:
            return cands[0]
        D = np.array(design)
        seen = [set(D[:, j].tolist()) for j in range(D.shape[1])]
        new = np.array([sum(v not in s for v, s in zip(c, seen, strict=True)) for c in cands])
        far = (C[:, None, :] != D[None, :, :]).sum(axis=2).min(axis=1)
        return cands[int(np.lexsort((-far, -new))[0])]

    def _random_unknown(self, known: set[Index]) -> Index:
        """A uniformly random arch not yet seen (bounded rejection, then a sweep)."""
        for idx in self.ispace.random(self._rng, 64):
            if idx not in known:  # random() draws inside the allowed choices
                return idx
        if self.ispace.size <= 1_000_000:
            rest = [i for i in self.ispace.enumerate_all() if i not in known]
            if rest:
                return rest[int(self._rng.integers(len(rest)))]
        logger.warning("surrogate sampler: no unseen arch found; repeating a random one")
        return self.ispace.random(self._rng, 1)[0]

    def _targets(self, study: Study, trials: list[FrozenTrial]) -> np.ndarray:
        """(n, m) values on the modelling scale, signed so every column is a loss."""
        values = np.array([t.values for t in trials], dtype=np.float64)
        if len(self._logs) != values.shape[1] or not self._models:
            self._logs = [
                bool(np.all(col > 0) and col.max() / col.min() > self.log_ratio)
                for col in values.T
            ]
        out = values.copy()
        for j, use_log in enumerate(self._logs):
            if use_log:
                out[:, j] = np.log(np.clip(values[:, j], 1e-300, None))
        self._signs = loss_signs(study.directions)
        out = out * self._signs
        if self.warp == "rank":
            out = self._rank_warp(out)
        return out

    def _rank_warp(self, losses: np.ndarray) -> np.ndarray:
        """Each column to normal scores of its ranks (a Gaussian copula): an increasing map, so
        dominance is unchanged, that spreads the dense accurate end of an accuracy column and
        pulls in the far tail (chance-level archs), which a stationary GP otherwise fits at the
        expense of the top. The (score, loss) pairs are kept to map predictions back."""
        z = normal_scores(losses)
        self._warps = [(np.sort(z[:, j]), np.sort(losses[:, j])) for j in range(z.shape[1])]
        return z

    def _unwarp(self, j: int, z: np.ndarray) -> np.ndarray:
        """Inverse of the last rank warp for column j: piecewise linear between the measured
        points, linear beyond them with the slope of the outermost segment."""
        zs, ys = self._warps[j]
        out = np.interp(z, zs, ys)
        if len(zs) > 1:
            lo = (ys[1] - ys[0]) / max(zs[1] - zs[0], 1e-12)
            hi = (ys[-1] - ys[-2]) / max(zs[-1] - zs[-2], 1e-12)
            out = np.where(z < zs[0], ys[0] + (z - zs[0]) * lo, out)
            out = np.where(z > zs[-1], ys[-1] + (z - zs[-1]) * hi, out)
        return out

    def _score_heldout(self, study: Study, measured: list[tuple[FrozenTrial, Index]]) -> None:
        if self._models is None:
            return
        fresh = [(t, i) for t, i in measured if t.number not in self._fitted_on]
        if not fresh:
            return
        X = self.ispace.encode([i for _, i in fresh])
        values = np.array([t.values for t, _ in fresh], dtype=np.float64)
        while len(self._pairs) < values.shape[1]:
            self._pairs.append(deque(maxlen=self._window))
        for j, model in enumerate(self._models):
            mean, _ = model.predict(X)
            pred = self._from_scale(j, mean, study)
            self._pairs[j].extend(zip(pred.tolist(), values[:, j].tolist(), strict=True))

    def _unwarped(self, losses: np.ndarray) -> np.ndarray:
        """Losses on the fitting scale -> the modelling scale (undo the rank warp)."""
        out = np.array(losses, dtype=np.float64, copy=True)
        if self.warp == "rank" and self._warps:
            for j in range(out.shape[-1]):
                out[..., j] = self._unwarp(j, out[..., j])
        return out

    def _to_units(self, losses: np.ndarray) -> np.ndarray:
        """Losses on the fitting scale -> signed losses in the objectives' units (undo the
        warp, exp of the log-scaled columns, sign kept: increasing maps, so dominance is
        unchanged)."""
        out = self._unwarped(losses)
        for j, use_log in enumerate(self._logs):
            if use_log:
                sign = self._signs[j]
                out[..., j] = sign * np.exp(sign * out[..., j])
        return out

    def _from_scale(self, j: int, loss: np.ndarray, study: Study) -> np.ndarray:
        sign = loss_signs(study.directions)[j]
        if self.warp == "rank" and self._warps:
            loss = self._unwarp(j, np.asarray(loss, dtype=np.float64))
        value = loss * sign
        return np.exp(value) if self._logs[j] else value

    def _round(
        self,
        study: Study,
        measured: list[tuple[FrozenTrial, Index]],
        pending: list[Index],
        known: set[Index],
    ) -> None:
        self._score_heldout(study, measured)
        trials = [t for t, _ in measured]
        idxs = [i for _, i in measured]
        Y = self._targets(study, trials)
        X = self.ispace.encode(idxs)
        # Keep the model objects between rounds: a predictor may warm-start its refit.
        models = self._models or [
            self.predictor_cls(self.predictor_options) for _ in range(Y.shape[1])
        ]
        for j, model in enumerate(models):
            model.fit(X, Y[:, j])
        self._models = models
        self._fitted_on = {t.number for t in trials}
        self.rounds += 1

        feasible = np.array([_feasible(t) for t in trials])
        constrained = self._fit_constraints(trials, X)
        front = Y[feasible] if feasible.any() else Y[:0]
        if pending:
            Xp = self.ispace.encode(pending)
            likely = self._p_feasible(Xp) >= 0.5  # a pending arch as a fantasy, if feasible
            front = np.vstack([front, self._predict(Xp)[0][likely]])
        # Hypervolume reference: "median" = the median measured arch on each objective, so an
        # arch worse than a typical one on some objective earns no volume (the cheap corner of
        # a space is full of such archs); "nadir" = the worst measured value on each objective
        # + 10% of the range (select_batch's default); "front" = the nadir of the measured
        # *front* (far-out archs left out) + 10% of its range (``front_reference``), the
        # default since issue #17: with 3-4 objectives a candidate must beat the median arch on
        # every objective to earn volume under "median", so the ends of the front were reached
        # late (dev split, surrogate/RESULTS.md).
        # The hypervolume is measured on the predictors' scale (hv_units "model", e.g. log
        # latency) or in the objectives' own units ("objective", as the study reports it).
        # The predictors fit rank-warped targets (``warp``), but hypervolume is measured on the
        # unwarped scale: the warp stretches the dense accurate end, and volume measured there
        # chased small accuracy gains (computers HV@50 0.70 against 0.78 unwarped). Quantiles
        # pass through an increasing map, so unwarping mean - kappa*std gives the same
        # optimistic quantile on the modelling scale.
        units = self._to_units if self.hv_units == "objective" else self._unwarped
        Yu = units(Y)
        Yf = Yu[feasible] if feasible.any() else Yu  # the reference from feasible trials
        ref = {"median": lambda: np.median(Yf, axis=0), "nadir": lambda: None,
               "front": lambda: front_reference(Yf)}[self.reference]()
        parents = [idxs[k] for k in self._parents(Y, feasible, trials)]
        pool = candidate_pool(
            self.ispace, parents, exclude=known, n_random=self.n_random, rng=self._rng
        )
        if not pool:
            self._queue.clear()
            return
        Xc = self.ispace.encode(pool)
        mean, std = self._predict(Xc)
        pf = self._p_feasible(Xc)
        for _ in range(self.generations):
            # Evolution over the predictor: mutate the best-scoring candidates, score again.
            top = self._select(mean, std, pf, front, self.n_parents, ref, units,
                               no_feasible=constrained and not feasible.any())
            extra = candidate_pool(
                self.ispace, [pool[k] for k in top], exclude=known | set(pool), n_random=0,
                rng=self._rng,
            )
            if not extra:
                break
            Xe = self.ispace.encode(extra)
            m2, s2 = self._predict(Xe)
            pool, mean, std = pool + extra, np.vstack([mean, m2]), np.vstack([std, s2])
            pf = np.concatenate([pf, self._p_feasible(Xe)])
        batch = self._select(mean, std, pf, front, self._batch(len(trials)), ref, units,
                             no_feasible=constrained and not feasible.any(),
                             spread=self.spread)
        extreme = None
        if self.extremes and feasible.any():
            batch, extreme = self._with_extreme(batch, mean, std, pf, Y[feasible])
        self._queue.clear()
        for rank, k in enumerate(batch):
            info = {
                "source": "surrogate", "round": self.rounds, "rank": rank,
                **({"p_feasible": round(float(pf[k]), 4)} if constrained else {}),
                **({"extreme_of": extreme[1]} if extreme and extreme[0] == k else {}),
                "predicted": [float(v) for v in self._from_scale_all(mean[k], study)],
                # on the modelling scale (log for log-scaled objectives), as a half-width
                "predicted_std": [float(v) for v in (self._unwarped(mean[k] + std[k])
                                                     - self._unwarped(mean[k] - std[k])) / 2],
                "log_scale": list(self._logs),
            }
            self._queue.append((pool[k], info))
        logger.debug("surrogate round %d: %d candidates, batch %s", self.rounds, len(pool), batch)

    # --- constraints (constrained EHVI: improvement x probability of feasibility) ------------
    def _fit_constraints(self, trials: list[FrozenTrial], X: np.ndarray) -> bool:
        """One predictor per constraint of the study (Optuna's per-trial constraint values,
        feasible when <= 0), fitted on the measured violations; False when there is none."""
        names = sorted({name for t in trials for name in t.constraints})
        if not names:
            self._cmodels = []
            return False
        C = np.array([[t.constraints.get(n, 0.0) for n in names] for t in trials])
        if len(self._cmodels) != len(names):
            self._cmodels = [self.predictor_cls(self.predictor_options) for _ in names]
        for j, model in enumerate(self._cmodels):
            model.fit(X, C[:, j])
        return True

    def _p_feasible(self, X: np.ndarray) -> np.ndarray:
        """Predicted probability that each row satisfies every constraint: the product over
        constraints of P(violation <= 0) under each predictor's Gaussian (1 without any)."""
        p = np.ones(len(X))
        for model in self._cmodels:
            mean, std = model.predict(X)
            p *= norm.cdf(-mean / np.maximum(std, 1e-9))
        return p

    def _parents(self, Y: np.ndarray, feasible: np.ndarray, trials: list[FrozenTrial]) -> list:
        """Rows to mutate: the feasible ones by ``choose_parents``, then (too few feasible)
        the infeasible ones with the smallest total violation."""
        if feasible.all():
            return list(choose_parents(Y, self.n_parents))
        ok = np.flatnonzero(feasible)
        out = list(ok[choose_parents(Y[ok], self.n_parents)]) if len(ok) else []
        bad = np.flatnonzero(~feasible)
        excess = [sum(max(v, 0.0) for v in trials[k].constraints.values()) for k in bad]
        out += list(bad[np.argsort(excess, kind="stable")][: self.n_parents - len(out)])
        return out

    def _select(self, mean, std, pf, front, size, ref, units, *, no_feasible: bool,
                spread: bool = False) -> list[int]:
        """The batch rule, constraint-aware. Before any feasible arch is measured there is no
        front to improve: the candidates most likely feasible come first."""
        if no_feasible:
            return list(np.argsort(-pf, kind="stable")[:size])
        return select_batch(mean, std, front, batch_size=size, kappa=self.kappa,
                            reference=ref, to_units=units, spread=spread,
                            feasibility=pf if self._cmodels else None,
                            min_feasibility=self.min_feasibility)

    def _with_extreme(self, batch: list[int], mean: np.ndarray, std: np.ndarray,
                      pf: np.ndarray, measured: np.ndarray
                      ) -> tuple[list[int], tuple[int, int] | None]:
        """``extremes``: the batch's first pick is the candidate most likely to extend the
        front's range on one objective (objective ``rounds % m``, cycling): the best optimistic
        value on it among the candidates more likely feasible than not, if that beats the best
        measured value. Hypervolume with a reference at the front's nadir credits the ends of
        the front, which a median-referenced batch rule reaches late."""
        j = self.rounds % mean.shape[1]
        optimistic = mean[:, j] - self.kappa * std[:, j]
        optimistic = np.where(pf >= 0.5, optimistic, np.inf)
        k = int(np.argmin(optimistic))
        if not optimistic[k] < measured[:, j].min():
            return batch, None
        return [k] + [i for i in batch if i != k][: self.batch_size - 1], (k, j)

    def _from_scale_all(self, loss_row: np.ndarray, study: Study) -> np.ndarray:
        return np.array([self._from_scale(j, loss_row[j : j + 1], study)[0]
                         for j in range(len(loss_row))])

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self._models is not None
        outs = [m.predict(X) for m in self._models]
        return np.stack([o[0] for o in outs], axis=1), np.stack([o[1] for o in outs], axis=1)


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Each column's ranks as standard-normal quantiles, ``Phi^-1((rank - 0.5) / n)`` (ties
    share their mean rank): the rank warp the predictors fit."""
    return norm.ppf((rankdata(values, axis=0) - 0.5) / len(values))


def choose_parents(loss: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``loss`` to mutate: the closest to its Pareto front first, the front members
    least crowded first (extremes, then the widest gaps), as NSGA-II selects. With the ties
    among front members broken in measurement order the members found last, often the ones
    that extend the front, were never mutated once the front outgrew ``n``."""
    on_front = pareto_mask(loss)
    closeness = epsilon_to_front(loss, loss[on_front])
    crowding = np.zeros(len(loss))
    crowding[on_front] = crowding_distance(loss[on_front])
    return np.lexsort((-crowding, closeness))[:n]


def _feasible(trial: FrozenTrial) -> bool:
    """Optuna's convention: every constraint value (``Trial.set_constraint``) <= 0."""
    return all(c <= 0 for c in trial.constraints.values())
