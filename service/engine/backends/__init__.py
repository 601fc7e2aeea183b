"""Executors other than the embedded local one (``service.engine.executors.LocalExecutor``).

A backend provides an ``Executor``; the ``StudyRunner`` loop, the ``TrialStore``, leases,
heartbeats, cancellation and resume are shared by all. Backends import their engine lazily: the
local path never imports Ray.
"""

from __future__ import annotations

BACKENDS = ("local", "ray")
