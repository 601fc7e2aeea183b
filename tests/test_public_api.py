"""``import paretonas`` gives the public API, and it works end to end in this process."""

from __future__ import annotations

import paretonas
from tests.conftest import table_spec


def test_the_public_names_are_the_service_s_own():
    from service.engine.spec import StudySpec
    from service.interfaces.client import Client

    assert paretonas.Client is Client and paretonas.StudySpec is StudySpec
    assert set(paretonas.__all__) == {"Client", "ClientError", "StudySpec", "StudyWarning",
                                     "run_study"}


def test_a_study_runs_through_the_public_api(data_dir):
    spec = paretonas.StudySpec.model_validate(table_spec(budget={"trials": 5}))
    result = paretonas.run_study(spec, progress=False)
    assert result["study"]["status"] == "completed" and len(result["trials"]) == 5
    assert result["pareto"]
