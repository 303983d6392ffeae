"""Hypothesis profiles and sizes for the fuzz suite: ``quick`` (CI, the default) or ``full``.

``OPENHEIM_FUZZ=full`` (``make fuzz``) selects the long run. Quick mode is derandomized so CI
sees the same examples every time; full mode explores new ones on each run. Tests decorate
themselves with ``FUZZ`` instead of loading the profile globally, so the other suites keep
their own settings.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from hypothesis import HealthCheck, settings

MODE_ENV = "OPENHEIM_FUZZ"

_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    "quick",
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW_DATA,
)
settings.register_profile(
    "full",
    max_examples=2500,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_SLOW_DATA,
)

MODE = "full" if os.environ.get(MODE_ENV, "").strip().lower() == "full" else "quick"
FUZZ = settings.get_profile(MODE)

#: Frames per live transport: at least 10,000 in full mode, as the issue asks.
_LIVE_FRAMES = {"quick": 1_500, "full": 12_000}


def live_frame_count() -> int:
    return _LIVE_FRAMES[MODE]


@contextlib.contextmanager
def no_hang(seconds: float = 10.0) -> Iterator[None]:
    """Fail with ``TimeoutError`` if the (synchronous) body runs longer than ``seconds``.

    A sans-IO decoder that loops forever would otherwise stall the run instead of failing.
    """

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
