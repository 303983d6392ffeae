"""The worker side of ``serve --workers N``: what the parent tells a worker, and what the
worker owes it (serving on the socket it was handed, saying when it is ready, dying with it).

A worker learns that its parent died from a pipe, its lifeline: the parent holds the write
end and never writes, so the worker reads end-of-file once the parent is gone, however it
died. (``PR_SET_PDEATHSIG`` cannot do this: it fires when the *thread* that started the
worker ends, and trio starts processes from its thread cache, whose threads end when idle.)
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import attrs
import trio

from openheim.server.worker_metrics import WorkerShare

log = logging.getLogger(__name__)


@attrs.frozen
class WorkerRole:
    """This process is worker ``index``; it serves on descriptor ``fd``, watches its parent
    through descriptor ``lifeline`` and shares its metrics in ``folder``."""

    index: int
    fd: int
    lifeline: int
    folder: Path

    def argv(self) -> list[str]:
        """The hidden ``serve`` options that make a process this worker."""
        return [
            *("--worker-index", str(self.index), "--worker-fd", str(self.fd)),
            *("--worker-lifeline", str(self.lifeline), "--worker-dir", str(self.folder)),
        ]

    @property
    def bind(self) -> str:
        return f"fd://{self.fd}"

    @property
    def share(self) -> WorkerShare:
        return WorkerShare(self.folder, self.index)

    async def die_with_parent(self) -> None:
        """SIGTERM this worker (its usual shutdown) once the parent is gone, even by SIGKILL,
        so no worker outlives its supervisor and keeps the port."""
        os.set_blocking(self.lifeline, False)  # a read must never stop the loop
        while True:
            await trio.lowlevel.wait_readable(self.lifeline)
            try:
                if os.read(self.lifeline, 64) == b"":
                    break
            except BlockingIOError:
                continue
        log.warning("worker %d: the parent is gone; shutting down", self.index)
        os.kill(os.getpid(), signal.SIGTERM)

    @staticmethod
    def announce_ready() -> None:
        """The line the parent waits for on the worker's stdout."""
        os.write(1, b"ready\n")
