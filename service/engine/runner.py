"""``StudyRunner``: the ask -> evaluate -> tell -> persist loop of one study, for every backend.

The runner asks the strategy for up to the executor's capacity of archs, hands them to an
``Executor`` (this process, or Ray Tune trials across a cluster), waits, tells the strategy and
persists each finished trial with its front update through a ``TrialStore`` (database or
memory). It knows nothing about queues, leases or processes: it asks ``store.should_stop()``
between outcomes. Resuming = rebuilding the Optuna study from the persisted trials, so a crash
loses no finished trial (at most the ones in flight) and re-runs none.

Trials are numbered in completion order; with one trial in flight asks and tells interleave
the same way on every executor, so for a fixed seed every backend gives the same trials.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from search_spaces.base import Arch
from service.engine.clock import utcnow
from service.engine.evaluation import MeasurementCache
from service.engine.executors import Executor, LocalExecutor
from service.engine.front import FrontTracker
from service.engine.records import TrialRecord, TrialStore
from service.engine.resolve import ResolvedStudy
from service.engine.stages import StagePlan, single_stage_view
from service.engine.valid_ask import ask_valid

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

CONSTRAINTS_ATTR = "constraints"  # Optuna's system-attr prefix for constraint values
#: Sampler state Optuna keeps on trials (e.g. NSGA-II's generation), persisted in
#: ``info["optuna_attrs"]`` so a resumed study continues where it was, not at generation 0.
_NOT_SAMPLER_STATE = (CONSTRAINTS_ATTR, "fixed_params")


#: Longest wait for an outcome before checking the stop request and the clock again.
WAIT_S = 0.25


@dataclass
class _Pending:
    """An asked trial until it is told: its Optuna trial, arch, key and start times."""

    ticket: int
    trial: optuna.Trial
    arch: Arch
    key: str
    started_at: dt.datetime
    t0: float


class StudyRunner:
    """The one study loop, for every executor (see the module docstring)."""

    def __init__(
        self,
        study: ResolvedStudy,
        store: TrialStore,
        *,
        worker_id: str = "local",
        cache: MeasurementCache | None = None,
        executor: Executor | None = None,
    ):
        self.study = study
        self.spec = study.spec
        self.store = store
        self.worker_id = worker_id
        self.executor = executor or LocalExecutor(study, cache=cache)
        self.optuna_study: optuna.Study | None = None
        self._tickets = 0
        self.tracker = FrontTracker(self.spec)
        self.records: list[TrialRecord] = []
        self.by_key: dict[str, TrialRecord] = {}
        self.view = single_stage_view(study.space)  # what the sampler searches (see stages)
        self.stages = StagePlan.for_spec(self.spec, study.space)  # None: single stage
        self._last_quality: dict[str, Any] | None = None

    # --- setup ----------------------------------------------------------------------------------
    def _constraint_values(self, values: dict[str, float]) -> dict[str, float]:
        """Constraint name -> violation (<= 0 satisfied), as Optuna's samplers read them."""
        return {
            f"{i}:{c.key}": c.violation(values[c.key]) for i, c in enumerate(self.spec.constraints)
        }

    @property
    def stage(self) -> int:
        return self.view.stage

    def _make_optuna_study(self) -> optuna.Study:
        history = self.records
        if self.stages is not None:  # each stage has its own dims; stage 2 starts from 1's front
            self.view = self.stages.view(self.stages.stage_of(len(self.records)), self.records)
            history = self.stages.history(self.stage, self.records)
        # Re-seed past the trials already run so a resumed study does not replay its start.
        sampler = self.study.strategy.make_sampler(
            seed=self.spec.seed + len(self.records),
            context={"space": self.view.search_space(self.study.space),
                     "objectives": self.spec.objectives},
        )
        study = optuna.create_study(directions=self.spec.directions, sampler=sampler)
        if self.stages is not None and self.stage == 2:
            self.store.set_extra("stages", self.stages.summary(self.records))
            for params in self.stages.seeds(self.view, self.records):
                study.enqueue_trial(params)
        elif self.spec.seed_extremes:
            for params in self._untried_extremes():
                study.enqueue_trial(params)
        for rec in history:
            frozen = self._frozen(rec)
            if frozen is not None:  # None: outside this stage's space, nothing to learn
                study.add_trial(frozen)
        return study

    def _untried_extremes(self) -> list[dict[str, Any]]:
        """The smallest and the largest arch the stage's sampler may ask for (first and last
        choice of each distribution), unless already tried."""
        tried = {r.arch_key for r in self.records}
        out = []
        for pick in (0, -1):
            params = {n: d.choices[pick] for n, d in self.view.distributions.items()}
            if self.key_of(Arch(self.view.arch_params(params))) not in tried:
                out.append(params)
        return out

    def _frozen(self, rec: TrialRecord) -> optuna.trial.FrozenTrial | None:
        params = self.view.sampler_params(rec.arch)
        if params is None:
            return None
        system_attrs: dict[str, Any] = {}
        values = None
        if rec.state == "complete":
            values = [rec.values[o.key] for o in self.spec.objectives]
            for key, violation in self._constraint_values(rec.values).items():
                system_attrs[f"{CONSTRAINTS_ATTR}:{key}"] = violation
        if rec.stage == self.stage:  # another stage's sampler state means nothing here
            system_attrs.update(rec.info.get("optuna_attrs", {}))
        return optuna.trial.create_trial(
            params=params, distributions=self.view.distributions, values=values,
            state=TrialState.COMPLETE if rec.state == "complete" else TrialState.FAIL,
            system_attrs=system_attrs,
        )

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> str:
        """Run until the budget is spent or a stop is requested.

        Returns ``"completed"`` or ``"stopped"``; raises ``LeaseLost`` if another worker owns
        the study now.
        """
        self._load_history()
        self.optuna_study = self._make_optuna_study()
        self.executor.start(self.records)
        try:
            outcome = self._loop()
        finally:
            self.executor.close()  # drops whatever is still in flight
        if outcome == "stopped":
            return "stopped"
        if self.tracker.reference is None:  # fewer trials than the warm-up: fix it now
            self._finalise_reference()
        self._finetune_front()
        return "completed"

    def _loop(self) -> str:
        """Ask up to the executor's capacity, wait, tell, persist; until the budget or the time
        is spent ("completed") or a stop is requested ("stopped")."""
        budget = self.spec.budget
        elapsed_before = sum(r.duration_s for r in self.records)
        started = time.perf_counter()
        pending: dict[int, _Pending] = {}
        while len(self.records) < budget.trials:
            if self.store.should_stop():
                return "stopped"
            if budget.seconds and elapsed_before + time.perf_counter() - started >= budget.seconds:
                log.info("study %s: time budget spent", self.spec.name)
                break
            while (len(pending) < self.executor.capacity
                   and len(self.records) + len(pending) < budget.trials):
                n = len(self.records) + len(pending)
                if self.stages is not None and self.stages.stage_of(n) != self.stage:
                    if pending:  # a stage's sampler is built from all of the previous stage
                        break
                    self.optuna_study = self._make_optuna_study()
                job = self._ask()
                known = self.by_key.get(job.key)
                if known is not None:  # never evaluate the same network twice in one study
                    self._finish(job, *self.reuse(known),
                                 duration_s=time.perf_counter() - job.t0)
                    break  # a finished trial: check the stop request and the clock again
                pending[job.ticket] = job
                self.executor.submit(job.ticket, job.arch)
            for out in self.executor.wait(WAIT_S) if pending else ():
                job = pending.pop(out.ticket)
                known = self.by_key.get(job.key)
                if known is not None:  # measured while this one was in flight
                    values, info, error = self.reuse(known)
                else:
                    values, info, error = out.values, out.info, out.error
                self._finish(job, values, {**info, **out.where}, error,
                             duration_s=out.duration_s)
        return "completed"

    def _load_history(self) -> None:
        """Persisted trials -> records, the arch index and the front."""
        self.records = sorted(self.store.load_trials(), key=lambda r: r.number)
        self.by_key = {}
        for r in self.records:  # the first trial of each arch: repeats point to it
            self.by_key.setdefault(r.arch_key, r)
        self.tracker.restore(self.records, self.store.reference_point)

    def _finetune_front(self) -> None:
        """The study's optional ``finetune`` stage (FMAS), once, after the search."""
        if self.spec.finetune is None:
            return
        from service.engine.finetune import finetune_front, stage_pending

        if stage_pending(self.records):  # not yet run, or interrupted: resumed
            finetune_front(self.study, self.records, self.store, seed=self.spec.seed)

    def _ask(self) -> _Pending:
        # Archs the space cannot evaluate (no table row) are re-asked, not trials (valid_ask).
        trial, arch, _ = ask_valid(self.optuna_study, self.view, self.study.space,
                                   seed=self.spec.seed)
        self._tickets += 1
        return _Pending(self._tickets, trial, arch, self.key_of(arch), utcnow(),
                        time.perf_counter())

    def key_of(self, arch: Arch) -> str:
        """The arch's key for de-duplication: that of its canonical arch, which equivalent archs
        (differing only in dims that do not change the network) share."""
        return self.study.space.canonical(arch).key()

    @staticmethod
    def reuse(known: TrialRecord) -> tuple[dict[str, float], dict[str, Any], str | None]:
        """Values, info and error of a repeated arch: its first trial's, never re-measured."""
        info = {"duplicate_of": known.number, "sources": known.info.get("sources", {})}
        return dict(known.values), info, known.error

    def _finish(
        self, job: _Pending, values: dict[str, float], info: dict[str, Any], error: str | None,
        *, duration_s: float,
    ) -> TrialRecord:
        """Tell the sampler, persist the trial with the front update."""
        optuna_study, trial = self.optuna_study, job.trial
        frozen = optuna_study.get_trials(deepcopy=False)[trial.number]
        chosen = self.study.strategy.explain(optuna_study.sampler, trial.number)
        if chosen is not None:
            info = {**info, "strategy": chosen}
        sampler_state = {k: v for k, v in frozen.system_attrs.items()
                         if not k.startswith(_NOT_SAMPLER_STATE)}
        if sampler_state:
            info = {**info, "optuna_attrs": sampler_state}
        state = "failed" if error is not None else "complete"
        if state == "complete":
            for key, violation in self._constraint_values(values).items():
                trial.set_constraint(key, violation)
            optuna_study.tell(trial, [values[o.key] for o in self.spec.objectives])
        else:
            optuna_study.tell(trial, state=TrialState.FAIL)
        record = TrialRecord(
            # the study's own count: a stage-2 Optuna study holds only part of the history
            number=len(self.records), arch=job.arch.to_dict(), arch_key=job.key,
            values=values, state=state, started_at=job.started_at, finished_at=utcnow(),
            duration_s=duration_s, stage=self.stage, worker=self.worker_id, error=error,
            info=info,
        )
        final = len(self.records) + 1 >= self.spec.budget.trials
        update = self.tracker.add(record, final=final)
        self.store.save_trial(record, update)
        self._report_quality(optuna_study)
        for rec in self.records:
            if rec.number in update.left_front:
                rec.on_front = False
        self.records.append(record)
        self.by_key.setdefault(record.arch_key, record)
        return record

    def _report_quality(self, optuna_study: optuna.Study) -> None:
        """Predictor quality (held-out Kendall tau, RMSE) into ``studies.extra`` when a
        predictor is at work: the accuracy screen's and/or the surrogate strategy's."""
        quality: dict[str, Any] = {}
        screen = self.executor.predictor_quality()
        if screen:
            quality["accuracy_screen"] = screen
        if strategy := self.study.strategy.model_quality(optuna_study.sampler):
            quality["strategy"] = strategy
        if quality and quality != self._last_quality:
            self.store.set_extra("predictor_quality", quality)
            self._last_quality = quality

    def _finalise_reference(self) -> None:
        """Fix the hypervolume reference from the few trials there are (short studies)."""
        update = self.tracker.fix_reference_now()
        if update.reference_point is not None:
            self.store.save_reference(update)
