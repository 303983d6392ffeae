"""Process groups: how a command and everything it started are stopped together."""

from __future__ import annotations

import contextlib
import os
import signal


def signal_group(pgid: int, number: int = signal.SIGKILL) -> None:
    """Signal every process in the group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is left (zombies count until reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
