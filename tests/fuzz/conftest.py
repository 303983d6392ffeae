"""Fuzz fixtures: the e2e ``home`` (fake LLM + OPENHEIM_HOME) and the live-frame count."""

import pytest

from tests.e2e.conftest import home
from tests.fuzz.profiles import MODE, live_frame_count

__all__ = ["home"]


def pytest_report_header() -> str:
    return f"openheim fuzz mode: {MODE} (set OPENHEIM_FUZZ=full for the long run)"


@pytest.fixture
def live_frames() -> int:
    """How many frames the live tests send to each transport."""
    return live_frame_count()
