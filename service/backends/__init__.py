"""Execution backends other than the embedded local one (``service.worker``).

A backend provides a runner with the ``StudyRunner`` interface (``run() -> "completed" |
"stopped"``, raising ``LeaseLost``) over the same ``TrialStore``, so leases, heartbeats,
cancellation and resume stay the worker's business. Backends import their engine lazily: the
local path never imports Ray.
"""

from __future__ import annotations

BACKENDS = ("local", "ray")
