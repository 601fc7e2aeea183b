from __future__ import annotations

import pytest

from evaluators.profilers import reference


@pytest.fixture(autouse=True)
def _quick_reference_calibration(monkeypatch):
    """Calibrate the reference network in 0.05 s instead of seconds, afresh for each test."""
    monkeypatch.setattr(reference, "CALIBRATION_SECONDS", 0.05)
    reference.forget_calibrations()
    yield
    reference.forget_calibrations()
