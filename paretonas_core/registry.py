"""One small generic plugin registry shared by search spaces, profilers, predictors, strategies.

Built-ins are registered as ``"package.module:Class"`` strings and imported only when asked for,
so listing names never imports torch. Third-party plugins come from ``importlib.metadata``
entry points in the registry's group (e.g. ``paretonas.profilers``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(LookupError):
    """A name that is not registered; the message lists what is."""

    def __init__(self, kind: str, name: str, allowed: list[str]):
        self.kind, self.name, self.allowed = kind, name, allowed
        super().__init__(f"unknown {kind} {name!r}; allowed: {', '.join(allowed) or '(none)'}")


def import_target(target: str) -> Any:
    """Import ``"package.module:Attr"``, or a whole module given as ``"package.module"``."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


class Registry(Generic[T]):
    """Maps names to plugin classes, lazily imported."""

    def __init__(self, kind: str, entry_point_group: str):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._targets: dict[str, str | type[T]] = {}
        self._cache: dict[str, type[T]] = {}

    def register(self, name: str, target: str | type[T]) -> None:
        self._targets[name] = target
        self._cache.pop(name, None)

    def _entry_points(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=self.entry_point_group)}

    def names(self) -> list[str]:
        return sorted(set(self._targets) | set(self._entry_points()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def get(self, name: str) -> type[T]:
        if name in self._cache:
            return self._cache[name]
        if name in self._targets:
            target = self._targets[name]
            cls = import_target(target) if isinstance(target, str) else target
        else:
            eps = self._entry_points()
            if name not in eps:
                raise UnknownNameError(self.kind, name, self.names())
            cls = eps[name].load()
        self._cache[name] = cls
        return cls
