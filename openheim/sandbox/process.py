"""Starting and stopping a sandboxed command tree (the actor side of ``Sandbox``).

Every command runs in its own session (process group, no controlling terminal). Stopping it
ends the whole tree, however it got there: a supervised leader (Landlock's reaper) is asked
with SIGTERM first, since it alone can find children that left the group with ``setsid``;
then the group gets SIGKILL. bwrap's pid namespace needs no more: when bwrap dies, the kernel
kills everything inside.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import trio

from openheim.foundation.processes import group_running, signal_group
from openheim.sandbox.sandbox import Launch, Sandbox

#: How long a supervisor gets to end its tree after SIGTERM before the group is SIGKILLed.
_SUPERVISOR_GRACE_SECS = 2.0
#: Bound on waiting for a SIGKILLed leader to be reaped (only a process stuck in the kernel).
_REAP_GRACE_SECS = 5.0
#: How often to look whether the rest of a killed group has died.
_POLL_SECS = 0.005


@contextlib.asynccontextmanager
async def open_sandboxed_process(
    sandbox: Sandbox,
    argv: Sequence[str],
    cwd: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | object | None = None,
) -> AsyncIterator[trio.Process]:
    """Start ``argv`` in ``cwd`` under ``sandbox``; at the end of the block its whole tree is
    stopped, even when the block is cancelled. Waits for a command slot first (the tenant's
    cap). Raises ``OSError`` if the command cannot be started."""
    async with _slot(sandbox):
        launch = sandbox.prepare(argv, cwd, extra_env or {})
        try:
            process = await trio.lowlevel.open_process(
                launch.argv,
                cwd=cwd,
                env=launch.env,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # pgid == pid
            )
        except BaseException:
            await trio.to_thread.run_sync(launch.discard)
            raise
        try:
            yield process
        finally:
            with trio.CancelScope(shield=True):
                await stop_tree(process, launch)


async def stop_tree(process: trio.Process, launch: Launch) -> None:
    """End the command and everything it started; then remove its private temp folder."""
    pgid = process.pid
    if launch.supervised and process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with trio.move_on_after(_SUPERVISOR_GRACE_SECS):
            await process.wait()
    signal_group(pgid)
    with trio.move_on_after(_REAP_GRACE_SECS):
        await process.wait()
        # bwrap's init is in the group too, and reaping bwrap does not wait for it: the pid
        # namespace ends (killing what is inside) only once that init has died.
        while group_running(pgid):  # noqa: ASYNC110 (no event for a non-child's death)
            await trio.sleep(_POLL_SECS)
    await trio.to_thread.run_sync(launch.discard)


@contextlib.asynccontextmanager
async def _slot(sandbox: Sandbox) -> AsyncIterator[None]:
    if sandbox.slots is None:
        yield
        return
    async with sandbox.slots:
        yield
