"""Ray Tune adapters of a ``RayStudyRunner``: its ask/tell as a ``Searcher``, its abort flag as a
``Stopper``. Kept apart so that importing the backend module does not import Ray."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

if TYPE_CHECKING:
    from service.backends.ray_backend import RayStudyRunner


class StudySearcher(Searcher):
    """Tune's view of the study's strategy: ``suggest`` asks the Optuna sampler (any strategy,
    ours included, since strategies are Optuna samplers), ``on_trial_complete`` tells it and
    persists the trial."""

    def __init__(self, runner: RayStudyRunner):
        super().__init__()
        self.runner = runner

    def __getstate__(self) -> dict:
        # Tune pickles its searcher into the experiment directory for its own restore; ours
        # resumes from the database instead, and the runner (engine, locks) does not pickle.
        return {k: v for k, v in self.__dict__.items() if k != "runner"}

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the study's objectives come from its spec, not from Tune

    def suggest(self, trial_id: str):
        config = self.runner.next_config(trial_id)
        return Searcher.FINISHED if config == "finished" else config

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study resumes from the database, not from Tune's state."""

    def restore(self, checkpoint_path: str) -> None:
        """See ``save``."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.runner.complete(trial_id, result, error)


class StudyStopper(Stopper):
    """Stops every trial in flight once the study must stop: cancelled, lease lost, database
    gone, time budget spent (see ``RayStudyRunner.must_stop``)."""

    def __init__(self, runner: RayStudyRunner):
        self.runner = runner

    def __getstate__(self) -> dict:
        return {}  # see StudySearcher.__getstate__

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.runner.must_stop()
