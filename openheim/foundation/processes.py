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


def group_running(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies do not count: their code has
    stopped; whoever inherited them reaps them when it will). One ``kill`` when the group is
    gone; a ``/proc`` scan only while some member is left."""
    if not group_alive(pgid):
        return False
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields = stat.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                return True
    return False
