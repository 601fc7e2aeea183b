"""The study loop over an executor with several evaluations in flight, in this process: an
executor that evaluates like the local one but hands outcomes back newest first, as parallel
trials of different lengths do."""

from __future__ import annotations

from dataclasses import asdict

from service.engine.executors import LocalExecutor, Outcome, make_executor
from service.engine.records import MemoryStore
from service.engine.resolve import resolve_spec
from service.engine.runner import StudyRunner
from service.engine.spec import StudySpec
from tests.conftest import table_spec
from tests.service.helpers import brute_force_front


class NewestFirstExecutor(LocalExecutor):
    def __init__(self, study, capacity: int):
        super().__init__(study)
        self.capacity = capacity
        self.in_flight_max = 0

    def wait(self, timeout: float) -> list[Outcome]:
        self.in_flight_max = max(self.in_flight_max, len(self._queue))
        self._queue.rotate(1)  # the newest submission finishes first
        return super().wait(timeout)


def test_outcomes_out_of_order_are_numbered_by_completion_and_saved_once(data_dir):
    spec = table_spec(strategy={"name": "random"}, budget={"trials": 12})
    resolved = resolve_spec(StudySpec.model_validate(spec))
    store = MemoryStore()
    executor = NewestFirstExecutor(resolved, capacity=3)
    assert StudyRunner(resolved, store, executor=executor).run() == "completed"
    assert executor.in_flight_max == 3
    assert [t.number for t in store.trials] == list(range(12))
    front = brute_force_front([asdict(t) for t in store.trials], spec)
    assert {t.number for t in store.trials if t.on_front} == front


def test_two_stages_wait_for_the_first_stage_in_flight(data_dir):
    spec = table_spec(stages=2, stage1_dims=["depth"], stage1_fraction=0.5,
                      budget={"trials": 10}, strategy={"name": "random"})
    resolved = resolve_spec(StudySpec.model_validate(spec))
    store = MemoryStore()
    StudyRunner(resolved, store, executor=NewestFirstExecutor(resolved, capacity=3)).run()
    assert [t.stage for t in store.trials] == [1] * 5 + [2] * 5
    stage1_values = {(t.arch["op"], t.arch["width"]) for t in store.trials if t.stage == 1}
    assert stage1_values == {("skip", 16)}  # stage 1 fixes the other dims at their largest


def test_the_local_executor_is_the_default(data_dir):
    spec = StudySpec.model_validate(table_spec())
    assert isinstance(make_executor(resolve_spec(spec)), LocalExecutor)
