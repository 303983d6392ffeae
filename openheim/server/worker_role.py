"""The worker side of ``serve --workers N``: what the parent tells a worker, and what the
worker owes it (serving on the socket it was handed, saying when it is ready, dying with it).
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

import attrs

from openheim.server.worker_metrics import WorkerShare

_PR_SET_PDEATHSIG = 1


@attrs.frozen
class WorkerRole:
    """This process is worker ``index`` of the parent ``parent``; it serves on descriptor
    ``fd`` and shares its metrics in ``folder``."""

    index: int
    fd: int
    parent: int
    folder: Path

    def argv(self) -> list[str]:
        """The hidden ``serve`` options that make a process this worker."""
        return [
            *("--worker-index", str(self.index), "--worker-fd", str(self.fd)),
            *("--worker-parent", str(self.parent), "--worker-dir", str(self.folder)),
        ]

    @property
    def bind(self) -> str:
        return f"fd://{self.fd}"

    @property
    def share(self) -> WorkerShare:
        return WorkerShare(self.folder, self.index)

    def die_with_parent(self) -> None:
        """SIGTERM this worker when the parent dies, even by SIGKILL (Linux), so no worker
        outlives its supervisor and keeps the port."""
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != self.parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    @staticmethod
    def announce_ready() -> None:
        """The line the parent waits for on the worker's stdout."""
        os.write(1, b"ready\n")
