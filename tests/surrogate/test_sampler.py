"""SurrogateSampler on a synthetic table with known structure (and missing rows)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from search_spaces.base import Dim
from search_spaces.table import TableSpace
from surrogate.pareto import pareto_mask
from surrogate.sampler import SurrogateSampler, choose_parents, normal_scores

torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
OPS = ("conv", "pool", "skip", "attn", "mlp")


def write_synthetic(path: Path) -> Path:
    """720 grid points minus ~10%: acc rises with depth/width and depends on the op, latency is
    additive; a little seeded noise so that the front is not trivially one corner."""
    rng = np.random.default_rng(1)
    op_acc = dict(zip(OPS, (0.08, 0.0, -0.05, 0.1, 0.03), strict=True))
    op_lat = dict(zip(OPS, (2.0, 0.5, 0.1, 4.0, 1.0), strict=True))
    rows = []
    for depth, op, width, kernel in itertools.product(range(1, 7), OPS, (8, 16, 24, 32, 48, 64),
                                                      (1, 3, 5, 7)):
        if rng.random() < 0.1:
            continue  # a missing row: such archs cannot be evaluated
        acc = (0.5 + 0.3 * (1 - np.exp(-depth / 2)) * (width / 64) ** 0.3 + op_acc[op]
               - 0.01 * abs(kernel - 3) + rng.normal(0, 0.005))
        lat = depth * (width / 16) * (op_lat[op] + 0.1 * kernel) + rng.uniform(0, 0.05)
        rows.append({"depth": depth, "op": op, "width": width, "kernel": kernel,
                     "acc": round(acc, 5), "latency_ms": round(lat, 5)})
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic(root / "s.csv")
    mp = pytest.MonkeyPatch()
    mp.setenv("PARETONAS_DATA_DIRS", str(root))
    yield TableSpace({"path": "s.csv", "params": ["depth", "op", "width", "kernel"]})
    mp.undo()


def distributions(space):
    return {n: CategoricalDistribution(list(d.choices)) for n, d in space.dimensions().items()}


def remember_why(sampler, trial: optuna.Trial) -> None:
    """Keep the sampler's explanation of the trial on it (read back as ``user_attrs["why"]``)."""
    if isinstance(sampler, SurrogateSampler):
        trial.set_user_attr("why", sampler.explain(trial.number))


def run_study(space, sampler, budget: int) -> tuple[optuna.Study, list[tuple]]:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    dists, asked = distributions(space), []
    for _ in range(budget):
        trial = study.ask(dists)
        remember_why(sampler, trial)
        key = tuple(trial.params[n] for n in dists)
        asked.append(key)
        row = space.table.lookup.get(key)
        if row is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, [row["acc"], row["latency_ms"]])
    return study, asked


def true_front(space) -> set[tuple]:
    keys = list(space.table.lookup)
    loss = np.array([[-space.table.lookup[k]["acc"], space.table.lookup[k]["latency_ms"]]
                     for k in keys])
    return {k for k, f in zip(keys, pareto_mask(loss), strict=True) if f}


def test_never_proposes_a_known_or_missing_arch(space):
    sampler = SurrogateSampler(space, seed=0, n_initial=8, batch_size=4)
    study, asked = run_study(space, sampler, 60)
    assert len(set(asked)) == len(asked), "an arch was proposed twice"
    assert all(k in space.table.lookup for k in asked), "an arch without a row was proposed"
    sources = [t.user_attrs["why"]["source"] for t in study.trials]
    assert sources[:8] == ["initial"] * 8 and "surrogate" in sources[8:]
    assert sampler.rounds >= 10


def test_parallel_asks_before_tells_get_distinct_archs(space):
    sampler = SurrogateSampler(space, seed=1, n_initial=6, batch_size=3)
    study, _ = run_study(space, sampler, 10)
    dists = distributions(space)
    pending = [study.ask(dists) for _ in range(9)]  # 9 workers, 3 batches' worth, no tells
    for trial in pending:
        remember_why(sampler, trial)
    keys = [tuple(t.params[n] for n in dists) for t in pending]
    measured = {tuple(t.params[n] for n in dists) for t in study.trials if t.state.is_finished()}
    assert len(set(keys)) == 9 and not set(keys) & measured
    for trial, key in zip(pending, keys, strict=True):
        row = space.table.lookup[key]
        study.tell(trial, [row["acc"], row["latency_ms"]])
    infos = [t.user_attrs["why"] for t in study.trials[10:]]
    assert all(i["source"] == "surrogate" for i in infos)
    assert len({i["round"] for i in infos}) >= 3, "each batch of asks triggers a new round"


def test_same_seed_same_sequence(space):
    a = run_study(space, SurrogateSampler(space, seed=3, n_initial=5, batch_size=5), 20)[1]
    b = run_study(space, SurrogateSampler(space, seed=3, n_initial=5, batch_size=5), 20)[1]
    assert a == b


@pytest.mark.parametrize("predictor", ["gp", "mlp_ensemble"])
def test_finds_more_of_the_front_than_random_search(space, predictor):
    front = true_front(space)
    budget = 50  # about 8% of the table
    options = {"hidden": 16, "epochs": 100, "members": 4} if predictor == "mlp_ensemble" else {}
    found, found_random = [], []
    for seed in range(3):
        sampler = SurrogateSampler(space, seed=seed, predictor=predictor,
                                   predictor_options=options, n_initial=10, batch_size=5)
        found.append(len(front & set(run_study(space, sampler, budget)[1])))
        rand = optuna.samplers.RandomSampler(seed=seed)
        found_random.append(len(front & set(run_study(space, rand, budget)[1])))
    assert np.median(found) >= 2 * max(np.median(found_random), 1), (found, found_random)


def test_quality_is_measured_on_held_out_trials(space):
    sampler = SurrogateSampler(space, seed=0, n_initial=10, batch_size=5,
                               objective_names=["acc", "latency_ms"])
    # 80 trials: over the first few rounds' batches alone (40 trials) the held-out tau swings
    # between 0.0 and 0.8 from seed to seed; by 80 it is 0.43-0.68 on seeds 0-5 (0.67-0.86 with
    # warp "none": this smooth, noise-free table is where fitting raw values is at its best).
    run_study(space, sampler, 80)
    quality = sampler.quality()
    assert set(quality) == {"acc", "latency_ms"}
    for q in quality.values():
        assert 60 <= q["n_heldout"] <= 70  # rounds 2.. each score the previous round's batch
        assert q["kendall_tau"] > 0.3 and q["rmse"] >= 0


def test_restricted_distributions_are_honoured(space):
    """A second stage asks within a subset of each dimension: stay inside it."""
    sampler = SurrogateSampler(space, seed=0, n_initial=4, batch_size=3)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    dists = distributions(space)
    dists["op"] = CategoricalDistribution(["conv", "attn"])
    dists["depth"] = CategoricalDistribution([4, 5, 6])
    for _ in range(15):
        trial = study.ask(dists)
        assert trial.params["op"] in ("conv", "attn") and trial.params["depth"] >= 4
        row = space.table.lookup.get(tuple(trial.params[n] for n in dists))
        if row is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, [row["acc"], row["latency_ms"]])


def test_unknown_predictor_is_named(space):
    with pytest.raises(LookupError, match="allowed: .*gp"):
        SurrogateSampler(space, predictor="nope")
    with pytest.raises(Exception, match="colour"):
        SurrogateSampler(space, predictor="gp", predictor_options={"colour": 1})


@pytest.mark.parametrize("options", [{"reference": "front"}, {"reference": "nadir"},
                                     {"hv_units": "objective"}, {"spread": True},
                                     {"warp": "none"}])
def test_every_batch_rule_runs_a_study_without_repeats(space, options):
    sampler = SurrogateSampler(space, seed=0, n_initial=8, batch_size=4, **options)
    study, asked = run_study(space, sampler, 40)
    assert len(set(asked)) == len(asked)
    assert sampler.rounds >= 6


def test_objective_units_undo_the_log_scale(space):
    sampler = SurrogateSampler(space, seed=0, n_initial=8, batch_size=4, hv_units="objective")
    study, _ = run_study(space, sampler, 20)
    trials = [t for t in study.trials if t.values is not None]
    Y = sampler._targets(study, trials)
    assert sampler._logs == [False, True]  # latency spans more than 10x here
    raw = np.array([t.values for t in trials]) * np.array([-1.0, 1.0])
    np.testing.assert_allclose(sampler._to_units(Y), raw)


def test_rank_warp_fits_normal_scores_and_maps_back_exactly(space):
    sampler = SurrogateSampler(space, seed=0, n_initial=8, batch_size=4)  # warp "rank"
    study, _ = run_study(space, sampler, 30)
    trials = [t for t in study.trials if t.values is not None]
    Z = sampler._targets(study, trials)
    raw = np.array([t.values for t in trials]) * np.array([-1.0, 1.0])
    model = raw.copy()
    model[:, 1] = np.log(model[:, 1])  # latency is log-scaled here (> 10x range)
    for j in range(2):  # same order as the losses, spread like a standard normal
        assert np.array_equal(np.argsort(Z[:, j], kind="stable"),
                              np.argsort(model[:, j], kind="stable"))
        assert abs(Z[:, j].mean()) < 1e-9 and 0.8 < Z[:, j].std() < 1.0
    np.testing.assert_allclose(sampler._unwarped(Z), model, atol=1e-12)
    # beyond the measured range the inverse continues the outermost segments' slopes: a
    # prediction better than every measured arch maps to a value better than the best one
    beyond = sampler._unwarped(np.array([[Z[:, 0].min() - 1.0, Z[:, 1].max() + 1.0]]))[0]
    assert beyond[0] < model[:, 0].min() and beyond[1] > model[:, 1].max()
    predicted = [t.user_attrs["why"]["predicted"] for t in study.trials
                 if t.user_attrs["why"]["source"] == "surrogate"]
    accs = [row["acc"] for row in space.table.lookup.values()]
    assert all(min(accs) - 0.2 < p[0] < max(accs) + 0.2 for p in predicted), "not unwarped"
    stds = [t.user_attrs["why"]["predicted_std"][0] for t in study.trials
            if t.user_attrs["why"]["source"] == "surrogate"]
    assert all(0 < s < max(accs) - min(accs) for s in stds), "std in accuracy units, not z"


def test_rank_warp_keeps_chance_level_archs_from_flattening_the_fit():
    # Four chance-level archs (accuracy 0.1 among ~0.8): fitted as measured they dominate the
    # GP's variance and its ranking of the rest is weaker than when fitted on rank scores.
    from scipy.stats import kendalltau

    from surrogate.gp import GaussianProcess

    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(160, 12)).astype(float)
    acc = 0.75 + 0.02 * X[:, :6].sum(axis=1) - 0.015 * X[:, 6:9].sum(axis=1)
    acc += rng.normal(0, 0.004, size=len(acc))
    acc[:4] = 0.1
    train, test = np.arange(60), np.arange(60, 160)
    taus = {}
    for name, target in (("raw", acc[train]),
                         ("rank", normal_scores(acc[train]))):
        gp = GaussianProcess({})
        gp.fit(X[train], target)
        taus[name] = kendalltau(gp.predict(X[test])[0], acc[test])[0]
    assert taus["rank"] > taus["raw"] + 0.05, taus


def test_unknown_batch_rules_are_refused(space):
    with pytest.raises(ValueError, match="allowed: median, nadir, front"):
        SurrogateSampler(space, reference="ideal")
    with pytest.raises(ValueError, match="allowed: model, objective"):
        SurrogateSampler(space, hv_units="log")
    with pytest.raises(ValueError, match="allowed: rank, none"):
        SurrogateSampler(space, warp="quantile")


def test_parents_span_the_front_when_it_outgrows_their_number():
    # a 12-member front measured from one end to the other, then two dominated archs: with 4
    # parents, both extremes and the members beside the widest gap go first, never the
    # dominated ones; with 14 every arch is a parent, the front members first
    xs = np.array([0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.5, 1.0])
    front = np.stack([xs, 1.0 - xs], axis=1)
    loss = np.vstack([front, [[0.5, 0.9], [0.2, 0.95]]])
    chosen = choose_parents(loss, 4).tolist()
    assert {0, 11} <= set(chosen[:2]) and set(chosen) == {0, 11, 10, 9}
    everyone = choose_parents(loss, 14).tolist()
    assert set(everyone[:12]) == set(range(12)) and sorted(everyone) == list(range(14))


def test_constraints_steer_proposals_to_feasible_archs(space):
    """Issue #17: the surrogate models each constraint and weights its acquisition by the
    probability of feasibility; with 30% of the table feasible it proposes at most as many
    infeasible archs as NSGA-II (before: 24-33 of 60, NSGA-II 30-35)."""
    lat = np.array([r["latency_ms"] for r in space.table.lookup.values()])
    cap = float(np.quantile(lat, 0.3))

    def infeasible(sampler, budget=60):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        dists, bad, n = distributions(space), 0, 0
        while n < budget:
            trial = study.ask(dists)
            row = space.table.lookup.get(tuple(trial.params[k] for k in dists))
            if row is None:
                study.tell(trial, state=TrialState.FAIL)
                continue
            n += 1
            trial.set_constraint("latency", row["latency_ms"] - cap)
            bad += row["latency_ms"] > cap
            study.tell(trial, [row["acc"], row["latency_ms"]])
        return bad, study

    for seed in range(3):
        sampler = SurrogateSampler(space, seed=seed)
        mine, study = infeasible(sampler)
        theirs, _ = infeasible(optuna.samplers.NSGAIISampler(seed=seed, population_size=20))
        assert mine <= min(theirs, 15), (seed, mine, theirs)
        chosen = [why for t in study.trials
                  if (why := sampler.explain(t.number) or {}).get("source") == "surrogate"]
        assert chosen and all(0 <= c["p_feasible"] <= 1 for c in chosen)


def test_extremes_option_first_picks_extend_the_front_on_each_objective(space):
    sampler = SurrogateSampler(space, seed=0, extremes=True)
    study, _ = run_study(space, sampler, 40)
    whys = [t.user_attrs.get("why") or {} for t in study.trials]
    picks = [why for why in whys if "extreme_of" in why]
    assert {why["extreme_of"] for why in picks} == {0, 1}
    assert all(why["rank"] == 0 for why in picks)


def test_covering_initial_design_shows_every_choice_early(space):
    """The covering design shows more of each dimension's choices in its first archs than
    uniform draws do (6 depths x 5 ops x 6 widths x 4 kernels: 21 choices in all)."""

    def shown(design: str, seed: int) -> int:
        sampler = SurrogateSampler(space, n_initial=8, initial_design=design, seed=seed)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        archs = []
        for _ in range(8):
            trial = study.ask(distributions(space))
            archs.append(trial.params)
            study.tell(trial, [0.5, 1.0])
        return sum(len({a[n] for a in archs}) for n in ("depth", "op", "width", "kernel"))

    covering = [shown("covering", s) for s in range(4)]
    uniform = [shown("random", s) for s in range(4)]
    assert min(covering) >= 19  # 8 archs can show at most 6 + 5 + 6 + 4 = 21
    assert np.mean(covering) > np.mean(uniform)


def test_early_batch_refits_after_every_arch_then_batches(space):
    table = space.table.lookup
    sampler = SurrogateSampler(space, n_initial=5, batch_size=4, early_batch=9, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    rounds = []
    for _ in range(17):
        trial = study.ask(distributions(space))
        row = table[tuple(trial.params[n] for n in space.dimensions())]
        study.tell(trial, [row["acc"], row["latency_ms"]])
        rounds.append(sampler.rounds)
    # trials 0-4 initial (no round); 5-8 one round each; then a round per 4 archs
    assert rounds[:5] == [0] * 5
    assert rounds[5:9] == [1, 2, 3, 4]
    assert rounds[9:17] == [5, 5, 5, 5, 6, 6, 6, 6]


def test_unknown_initial_design_is_refused(space):
    with pytest.raises(ValueError, match="initial_design"):
        SurrogateSampler(space, initial_design="sobol")
    with pytest.raises(ValueError, match="early_batch"):
        SurrogateSampler(space, early_batch=-1)
    with pytest.raises(ValueError, match="min_feasibility"):
        SurrogateSampler(space, min_feasibility=1.5)
    with pytest.raises(ValueError, match="opening"):
        SurrogateSampler(space, opening="tpe")
    with pytest.raises(ValueError, match="opening_trials"):
        SurrogateSampler(space, opening="gp", opening_trials=-1)


def test_gp_opening_hands_over_to_the_surrogate_with_only_new_evaluable_archs(space):
    """Optuna's GPSampler proposes after the initial design until ``opening_trials`` archs are
    measured, then the surrogate's batches take over; GPSampler's proposals on the full grid
    are repaired, so no arch without a row and no repeat is ever proposed."""
    sampler = SurrogateSampler(space, n_initial=5, batch_size=4, opening="gp",
                               opening_trials=15, seed=0)
    study, asked = run_study(space, sampler, 30)
    sources = [t.user_attrs["why"]["source"] for t in study.trials]
    assert sources[:5] == ["initial"] * 5
    assert sources[5:15] == ["gp-opening"] * 10
    assert set(sources[15:]) == {"surrogate"}
    assert sampler.rounds >= 1
    assert len(set(asked)) == len(asked), "an arch was proposed twice"
    assert all(k in space.table.lookup for k in asked), "an arch without a row was proposed"


def test_gp_opening_repairs_a_proposal_to_the_nearest_unseen_row(space):
    sampler = SurrogateSampler(space, opening="gp", seed=0)
    rows = sampler.ispace.universe
    assert rows is not None
    present = rows[0]
    # a row that exists and is unseen is kept as proposed
    assert sampler._nearest_unknown(present, set()) == present
    # once seen, the repair is another row one dimension away (the table has such rows)
    repaired = sampler._nearest_unknown(present, {present})
    assert repaired in set(rows) and repaired != present
    assert sum(a != b for a, b in zip(repaired, present, strict=True)) == 1




class GridSpace:
    """A 3 x 3 space that cannot list its archs (as a supernet space): the full grid."""

    def dimensions(self):
        return {"a": Dim((0, 1, 2)), "b": Dim((0, 1, 2))}

    def encode(self, arch):
        return np.array([arch["a"] / 2, arch["b"] / 2])

    def enumerate_archs(self):
        return None


def test_gp_opening_repairs_on_a_full_grid_to_an_unseen_neighbour():
    """Where the space has no list of archs, a proposal already seen becomes an unseen arch
    one dimension away, and an unseen one is kept."""
    sampler = SurrogateSampler(GridSpace(), opening="gp", seed=0)
    assert sampler.ispace.universe is None
    seen = {(0, 0), (0, 1)}
    repaired = sampler._nearest_unknown((0, 0), seen)
    assert repaired not in seen and sum(a != b for a, b in zip(repaired, (0, 0),
                                                               strict=True)) == 1
    assert sampler._nearest_unknown((2, 2), seen) == (2, 2)
