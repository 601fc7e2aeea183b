"""Which trials may stand on a study's Pareto front, the front itself, and the incremental
front and hypervolume history of one study (``FrontTracker``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.engine.records import FrontUpdate, TrialRecord
from service.engine.spec import ConstraintSpec, StudySpec
from surrogate.pareto import default_reference, hypervolume, loss_signs, pareto_mask, to_loss


def feasible(values: dict[str, float], constraints: Sequence[ConstraintSpec]) -> bool:
    return all(c.violation(values[c.key]) <= 0 for c in constraints)


def on_front_candidate(record: TrialRecord, spec: StudySpec, *,
                       predicted: bool = True) -> bool:
    """A complete, feasible trial that is the first of its arch (a repeat is represented by its
    first trial); with ``predicted`` False, only trials whose accuracy was measured."""
    if record.state != "complete" or "duplicate_of" in record.info:
        return False
    if not predicted and record.info.get("accuracy") == "predicted":
        return False
    return feasible(record.values, spec.constraints)


def losses(records: Sequence[TrialRecord], spec: StudySpec) -> np.ndarray:
    """(n, m) loss matrix of the records' objective values."""
    keys = [o.key for o in spec.objectives]
    return to_loss(np.array([[r.values[k] for k in keys] for r in records]).reshape(
        len(records), len(keys)), spec.directions)


def nondominated(records: Sequence[TrialRecord], spec: StudySpec) -> list[TrialRecord]:
    """The records no other record dominates, in their order."""
    if not records:
        return []
    return [r for r, keep in zip(records, pareto_mask(losses(records, spec)), strict=True)
            if keep]

#: Without explicit references, the hypervolume reference is fixed from this many first trials.
REFERENCE_WARMUP = 10


class FrontTracker:
    """Keeps the feasible non-dominated set and the hypervolume after every finished trial."""

    def __init__(self, spec: StudySpec, reference_point: list[float] | None = None):
        self.spec = spec
        self.keys = [o.key for o in spec.objectives]
        self._signs = loss_signs(spec.directions)
        self.predicted_on_front = spec.accuracy.front_includes_predicted
        self.explicit = [o.reference for o in spec.objectives]
        self.reference = np.asarray(reference_point) if reference_point is not None else None
        self.front: dict[int, np.ndarray] = {}  # trial number -> loss vector
        self.feasible: list[tuple[int, np.ndarray]] = []
        self.best_hypervolume: float | None = None

    def loss(self, record: TrialRecord) -> np.ndarray | None:
        """Loss vector of a trial that may stand on the front; None otherwise. The front users
        see holds measured points unless they ask for predicted ones too."""
        if not on_front_candidate(record, self.spec, predicted=self.predicted_on_front):
            return None
        return np.array([record.values[k] for k in self.keys], dtype=np.float64) * self._signs

    def add(self, record: TrialRecord, *, final: bool = False) -> FrontUpdate:
        """Account for ``record``; sets ``record.on_front``; returns what changed."""
        update = FrontUpdate()
        loss = self.loss(record)
        if loss is not None:
            self.feasible.append((record.number, loss))
            dominated = any(np.all(f <= loss) and np.any(f < loss) for f in self.front.values())
            if not dominated:
                gone = [n for n, f in self.front.items() if np.all(loss <= f) and np.any(loss < f)]
                for n in gone:
                    del self.front[n]
                self.front[record.number] = loss
                update.left_front = gone
                record.on_front = True
        if self.reference is None and (len(self.feasible) >= REFERENCE_WARMUP or final):
            self._fix_reference(update)
        elif self.reference is not None and record.on_front:
            hv = self.hypervolume()
            update.hypervolume.append((record.number, hv))
            self.best_hypervolume = update.best_hypervolume = hv
        return update

    def fix_reference_now(self) -> FrontUpdate:
        """Fix the reference from the trials seen so far (studies shorter than the warm-up)."""
        update = FrontUpdate()
        if self.reference is None:
            self._fix_reference(update)
        return update

    def hypervolume(self) -> float:
        assert self.reference is not None
        return hypervolume(np.array(list(self.front.values())), self.reference)

    def _fix_reference(self, update: FrontUpdate) -> None:
        if not self.feasible:
            return
        losses = np.array([loss for _, loss in self.feasible])
        ref = default_reference(losses)
        signs = self._signs
        for i, explicit in enumerate(self.explicit):
            if explicit is not None:
                ref[i] = explicit * signs[i]
        self.reference = ref
        update.reference_point = [float(v) for v in ref * signs]  # in objective units
        # Back-fill the history for the trials seen before the reference was known.
        seen: list[np.ndarray] = []
        for number, loss in self.feasible:
            seen.append(loss)
            update.hypervolume.append((number, hypervolume(np.array(seen), ref)))
        self.best_hypervolume = update.best_hypervolume = update.hypervolume[-1][1]

    def restore(self, records: list[TrialRecord], reference_point: list[float] | None) -> None:
        """Rebuild state from persisted trials (no updates emitted)."""
        if reference_point is not None:
            self.reference = np.asarray(reference_point) * self._signs
        for record in records:
            loss = self.loss(record)
            if loss is None:
                continue
            self.feasible.append((record.number, loss))
            if record.on_front:
                self.front[record.number] = loss
        if self.reference is not None and self.front:
            self.best_hypervolume = self.hypervolume()
