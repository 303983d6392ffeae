"""Finding a test's processes on the host, whatever pid namespace they run in.

A sandboxed command sees its own pids (``$$`` is 2 under bwrap), so tests mark the processes
they start with a string nobody else uses and look for it in ``/proc``.
"""

from __future__ import annotations

import secrets
from pathlib import Path


def live_with_marker(marker: str) -> list[int]:
    """Pids of running (not zombie) processes with ``marker`` in their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker.encode() in cmdline and stat[stat.rindex(")") + 2 :].split()[0] != "Z":
            found.append(int(entry.name))
    return found


def unique_seconds(whole: int) -> str:
    """``whole`` seconds and a random fraction, e.g. ``30.482913377``: a ``sleep`` argument no
    other test run on this machine (a CI run beside a local one) will use at the same time."""
    return f"{whole}.{secrets.randbelow(10**9):09d}"
