"""Device profilers: registry of profiler kinds (built-ins lazily imported, plus entry points)."""

from __future__ import annotations

from search_spaces.registry import Registry

PROFILERS: Registry = Registry("profiler", "paretonas.profilers")
