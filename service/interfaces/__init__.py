"""Interfaces: the REST API and the viewer, the CLI, the Python client, the queue workers and
the demos. They wire the engine to persistence."""
