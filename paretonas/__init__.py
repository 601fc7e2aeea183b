"""ParetoNAS's public face: what a user of the library imports.

``Client`` talks to a running service (REST); ``StudySpec`` is a validated study;
``run_study`` runs one in this process (as ``paretonas run`` does) and returns its result
document. Everything else lives in the packages underneath (``service``, ``search_spaces``,
``evaluators``, ``surrogate``) and may change between versions.
"""

from __future__ import annotations

from service.engine.spec import StudySpec
from service.interfaces.client import Client, ClientError, StudyWarning
from service.interfaces.commands.run import run_in_process as run_study

__all__ = ["Client", "ClientError", "StudySpec", "StudyWarning", "run_study"]
