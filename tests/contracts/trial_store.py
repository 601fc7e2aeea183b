"""Reusable contract suite every ``TrialStore`` meets (Optuna's ``testing/`` style).

Subclass it and provide a ``store`` fixture: a store of one fresh study that this runner owns,
with three helpers as attributes of the fixture's value (see ``StoreUnderTest``):

    class TestMyStore(TrialStoreContract):
        @pytest.fixture
        def store(self): return StoreUnderTest(MyStore(...), extra=..., steal=...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from service.engine.clock import utcnow
from service.engine.records import FrontUpdate, LeaseLost, TrialRecord, TrialStore


@dataclass
class StoreUnderTest:
    store: TrialStore
    extra: Callable[[], dict[str, Any]]  # the study's persisted extra document
    best_hypervolume: Callable[[], float | None]  # the study's persisted best hypervolume
    steal: Callable[[], None] | None = None  # another worker takes the study (None: no lease)


def record(number: int, *, on_front: bool = False, acc: float = 0.5) -> TrialRecord:
    now = utcnow()
    return TrialRecord(number=number, arch={"w": number}, arch_key=f"k{number}",
                       values={"acc": acc}, state="complete", started_at=now, finished_at=now,
                       duration_s=0.01, info={"n": number}, on_front=on_front)


class TrialStoreContract:
    @pytest.fixture
    def store(self) -> StoreUnderTest:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_saved_trials_load_back_in_order_with_front_flags(self, store):
        s = store.store
        s.save_trial(record(0, on_front=True), FrontUpdate())
        s.save_trial(record(1, on_front=True), FrontUpdate(left_front=[0]))
        loaded = s.load_trials()
        assert [(r.number, r.on_front, r.arch, r.values) for r in loaded] == \
               [(0, False, {"w": 0}, {"acc": 0.5}), (1, True, {"w": 1}, {"acc": 0.5})]

    def test_reference_and_hypervolume_are_kept(self, store):
        s = store.store
        assert s.reference_point is None
        s.save_trial(record(0, on_front=True), FrontUpdate(
            reference_point=[0.1], hypervolume=[(0, 0.4)], best_hypervolume=0.4))
        assert s.reference_point == [0.1] and store.best_hypervolume() == 0.4

    def test_observers_see_every_saved_trial_once(self, store):
        seen: list[int] = []
        store.store.add_observer(lambda r: seen.append(r.number))
        for n in range(3):
            store.store.save_trial(record(n), FrontUpdate())
        assert seen == [0, 1, 2]

    def test_update_trials_rewrites_values_info_and_front(self, store):
        s = store.store
        for n in range(2):
            s.save_trial(record(n, on_front=True), FrontUpdate())
        changed = record(1, acc=0.9)
        changed.info = {"finetune": {"after": 0.9}}
        s.update_trials([changed], best_hypervolume=0.7)
        by_number = {r.number: r for r in s.load_trials()}
        assert by_number[1].values == {"acc": 0.9} and by_number[1].on_front is False
        assert by_number[1].info == {"finetune": {"after": 0.9}}
        assert by_number[0].values == {"acc": 0.5} and by_number[0].on_front is True
        assert store.best_hypervolume() == 0.7

    def test_extra_entries_are_set_one_by_one(self, store):
        store.store.set_extra("a", {"x": 1})
        store.store.set_extra("b", [1, 2])
        store.store.set_extra("a", {"x": 2})
        extra = store.extra()  # a study may start with entries of its own (units)
        assert (extra["a"], extra["b"]) == ({"x": 2}, [1, 2])

    def test_a_fresh_study_neither_stops_nor_lost_its_lease(self, store):
        assert store.store.should_stop() is False
        store.store.check_lease()

    def test_a_lost_lease_refuses_every_write(self, store):
        if store.steal is None:
            pytest.skip("this store has no lease")
        s = store.store
        s.save_trial(record(0), FrontUpdate())
        store.steal()
        with pytest.raises(LeaseLost):
            s.check_lease()
        with pytest.raises(LeaseLost):
            s.save_trial(record(1), FrontUpdate())
        with pytest.raises(LeaseLost):
            s.update_trials([record(0, acc=0.1)], best_hypervolume=None)
        with pytest.raises(LeaseLost):
            s.set_extra("a", 1)
        assert [r.values for r in s.load_trials()] == [{"acc": 0.5}]
