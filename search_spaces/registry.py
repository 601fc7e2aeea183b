"""The plugin registry moved to the ground floor (``paretonas_core.registry``); this name stays so
that third-party plugins importing it keep working."""

from paretonas_core.registry import Registry, UnknownNameError, import_target  # noqa: F401
