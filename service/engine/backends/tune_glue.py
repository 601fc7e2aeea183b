"""Ray Tune adapters of a ``RayExecutor``: its hand-over of submitted archs as a ``Searcher``,
its closing flag as a ``Stopper``. Kept apart so that importing the backend module does not import
Ray; they take plain callables, so this module imports nothing of the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

#: ``next_config(trial_id)``: a Tune config, None to wait, or "finished"
NextConfig = Callable[[str], "dict[str, Any] | None | str"]
#: ``complete(trial_id, result, error)``
Complete = Callable[[str, "dict | None", bool], None]


class StudySearcher(Searcher):
    """Tune's view of a study: ``suggest`` takes the next arch the study's runner asked its
    strategy for, ``on_trial_complete`` hands the result back to the runner."""

    def __init__(self, next_config: NextConfig, complete: Complete):
        super().__init__()
        self.next_config = next_config
        self.complete = complete

    def __getstate__(self) -> dict:
        # Tune pickles its searcher into the experiment directory for its own restore; ours
        # resumes from the database instead, and the executor (threads, locks) does not pickle.
        return {k: v for k, v in self.__dict__.items() if k not in ("next_config", "complete")}

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the study's objectives come from its spec, not from Tune

    def suggest(self, trial_id: str):
        config = self.next_config(trial_id)
        return Searcher.FINISHED if config == "finished" else config

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study resumes from the database, not from Tune's state."""

    def restore(self, checkpoint_path: str) -> None:
        """See ``save``."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.complete(trial_id, result, error)


class StudyStopper(Stopper):
    """Stops every trial in flight once the runner closes the executor: cancelled, lease lost,
    database gone, time budget spent. Unlike a local trial a Ray trial can be interrupted, and one
    waiting for a busy device node could otherwise hold a cancelled study open indefinitely."""

    def __init__(self, must_stop: Callable[[], bool]):
        self.must_stop = must_stop

    def __getstate__(self) -> dict:
        return {}  # see StudySearcher.__getstate__

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.must_stop()
