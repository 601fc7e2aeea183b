"""ParetoNAS service: API, database, queue, workers, runner, client and CLI."""

__version__ = "0.1.0"
