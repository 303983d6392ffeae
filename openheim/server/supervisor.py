"""``openheim serve --workers N``: the parent that keeps N full servers running on one port.

Each worker is an ``openheim serve`` process of its own (its own trio loop, on its own core),
handed a listening socket made here (``listen``) and sharing the history store. A connection
and its sessions live in the worker that accepted it. The parent serves nothing; it:

- starts worker 0 first, so a bad config fails once, then the others;
- restarts a worker that dies: at once after a long run, after growing pauses when it keeps
  crashing (1 s doubling to 30 s); on the same socket, so no connection is refused meanwhile;
- on SIGHUP restarts the workers one by one: the new one is ready before the old one is asked
  to stop, and the old one finishes as on SIGTERM (turns saved, sockets closed with 1001);
- on SIGINT or SIGTERM stops them all and waits for them to finish.

A worker says it is ready by writing ``ready`` on its stdout, which the parent reads.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

import attrs
import trio

from openheim.foundation.errors import OpenheimError
from openheim.server.worker_role import WorkerRole

log = logging.getLogger(__name__)

#: How long a worker may take to start listening.
STARTUP_TIMEOUT = 60.0
#: How long a stopping worker may take to finish its turns and close its sockets.
STOP_TIMEOUT = 15.0
#: A worker that ran this long before dying is restarted at once.
STABLE_SECS = 30.0
FIRST_PAUSE, MAX_PAUSE = 1.0, 30.0

#: A worker's argv, from its index, the descriptor of its listening socket and the read end
#: of its lifeline (``worker_role``).
WorkerCommand = Callable[[int, int, int], list[str]]


class WorkerFailed(OpenheimError):
    """A worker exited before it was ready: the server cannot start."""


@attrs.define(eq=False)
class Worker:
    """One slot: its socket, and the process serving it now."""

    index: int
    sock: socket.socket
    process: trio.Process | None = None
    started_at: float = 0.0
    pause: float = FIRST_PAUSE


async def _wait_ready(process: trio.Process) -> bool:
    """True once the worker wrote ``ready``; False when it exited first."""
    assert process.stdout is not None
    seen = b""
    async for data in process.stdout:
        seen += data
        if b"ready\n" in seen:
            return True
    return False


@attrs.define(eq=False)
class Supervisor:
    """Start, watch and restart the workers."""

    workers: list[Worker]
    command: WorkerCommand
    env: Mapping[str, str]
    stopping: bool = False

    @classmethod
    def create(
        cls, sockets: Sequence[socket.socket], command: WorkerCommand, env: Mapping[str, str]
    ) -> Supervisor:
        return cls([Worker(i, sock) for i, sock in enumerate(sockets)], command, env)

    async def run(
        self,
        signals: AsyncIterator[int],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until SIGINT or SIGTERM arrives on ``signals``; SIGHUP restarts the workers.
        Raises ``WorkerFailed`` when a worker cannot start."""
        async with trio.open_nursery() as nursery:
            try:
                await self._start(nursery, self.workers[0])
                async with trio.open_nursery() as starting:
                    for worker in self.workers[1:]:
                        starting.start_soon(self._start, nursery, worker)
                task_status.started()
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        log.warning("SIGHUP: restarting the workers one by one")
                        await self.restart_all(nursery)
                    else:
                        log.warning("%s: stopping the workers", signal.Signals(signum).name)
                        break
            finally:
                self.stopping = True
                with trio.CancelScope(shield=True):
                    await self._stop_all()
                nursery.cancel_scope.cancel()

    async def restart_all(self, nursery: trio.Nursery) -> None:
        """A new process for each worker in turn, ready before the old one is stopped."""
        for worker in self.workers:
            old = worker.process
            await self._start(nursery, worker)
            if old is not None:
                await _stop(old)

    async def _start(self, nursery: trio.Nursery, worker: Worker) -> None:
        fd = worker.sock.fileno()
        # The worker keeps the read end; the write end stays here, unwritten, until the
        # worker has exited: when this process dies, the worker reads end-of-file.
        lifeline, lifeline_end = os.pipe()
        try:
            process = await trio.lowlevel.open_process(
                self.command(worker.index, fd, lifeline),
                env=dict(self.env),
                stdout=subprocess.PIPE,
                pass_fds=(fd, lifeline),
            )
        except BaseException:
            os.close(lifeline_end)
            raise
        finally:
            os.close(lifeline)
        with trio.move_on_after(STARTUP_TIMEOUT):
            if await _wait_ready(process):
                worker.process, worker.started_at = process, trio.current_time()
                log.info("worker %d ready (pid %d)", worker.index, process.pid)
                nursery.start_soon(self._watch, nursery, worker, process, lifeline_end)
                return
        process.kill()
        code = await process.wait()
        os.close(lifeline_end)
        raise WorkerFailed(
            f"worker {worker.index} did not start (exit status {code}); its error is above"
        )

    async def _watch(
        self, nursery: trio.Nursery, worker: Worker, process: trio.Process, lifeline_end: int
    ) -> None:
        """Restart ``worker`` when its process dies while it is still the current one."""
        assert process.stdout is not None
        try:
            async for _ in process.stdout:  # drained, so a chatty worker never blocks
                pass
            code = await process.wait()
        finally:
            os.close(lifeline_end)
        if self.stopping or worker.process is not process:
            return
        ran = trio.current_time() - worker.started_at
        if ran >= STABLE_SECS:
            pause, worker.pause = 0.0, FIRST_PAUSE
        else:
            pause, worker.pause = worker.pause, min(worker.pause * 2, MAX_PAUSE)
        log.error(
            "worker %d (pid %d) exited with status %d after %.1f s; restarting in %.1f s",
            worker.index,
            process.pid,
            code,
            ran,
            pause,
        )
        await trio.sleep(pause)
        while not self.stopping:
            try:
                await self._start(nursery, worker)
                return
            except WorkerFailed as exc:
                log.error("%s; trying again in %.0f s", exc, MAX_PAUSE)
                await trio.sleep(MAX_PAUSE)

    async def _stop_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for worker in self.workers:
                if worker.process is not None:
                    nursery.start_soon(_stop, worker.process)


async def _stop(process: trio.Process) -> None:
    """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    with trio.move_on_after(STOP_TIMEOUT):
        await process.wait()
        return
    log.error("worker pid %d did not stop in %g s: killing it", process.pid, STOP_TIMEOUT)
    process.kill()
    await process.wait()


async def run_workers(
    host: str,
    port: int,
    count: int,
    env: Mapping[str, str],
    worker_command: Callable[[WorkerRole], list[str]],
    *,
    log_format: str | None = None,
) -> int:
    """``openheim serve --workers N`` (N > 1): bind, start the workers, supervise until
    SIGINT or SIGTERM, then stop them and return the exit status."""
    import sys
    import tempfile
    from pathlib import Path

    from openheim.logs import announce, configure_logging
    from openheim.server.listen import open_listeners

    fmt = configure_logging(env, fmt=log_format)
    try:
        sockets = open_listeners(host, port, count)
    except OSError as exc:
        raise OpenheimError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sockets[0].getsockname()[1]
    url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    with tempfile.TemporaryDirectory(prefix="openheim-workers-") as folder:

        def command(index: int, fd: int, lifeline: int) -> list[str]:
            return worker_command(WorkerRole(index, fd, lifeline, Path(folder)))

        supervisor = Supervisor.create(sockets, command, env)
        signals_wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        failures: list[str] = []
        try:
            with trio.open_signal_receiver(*signals_wanted) as signals:
                async with trio.open_nursery() as nursery:
                    await nursery.start(supervisor.run, signals)
                    announce(fmt, f"openheim serving on {url} with {count} workers", url=url)
        except* WorkerFailed as group:
            failures += [str(exc) for exc in group.exceptions]
        finally:
            for sock in set(sockets):
                sock.close()
    for failure in failures[:1]:
        print(f"openheim: error: {failure}", file=sys.stderr)
    return 1 if failures else 0
