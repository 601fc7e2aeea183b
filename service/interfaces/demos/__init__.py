"""Demos, run as ``python -m service.interfaces.demos.<name>`` (``make demo``,
``make demo-table``)."""
