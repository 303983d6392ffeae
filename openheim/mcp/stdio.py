"""The stdio transport for the SDK's ``ClientSession``, owning the server's process group.

The SDK's ``stdio_client`` kills the process group only when the server does not exit by
itself: a server that exits cleanly on EOF leaves whatever it started running. Ours always
ends the group (stdin closed, a grace period, SIGTERM, then SIGKILL), tells the actor the
moment the server process exits (its output pipe can stay open in a grandchild), and knows
the server's pid.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TextIO

import trio

from openheim.config.model import McpServerConfig
from openheim.foundation.processes import group_alive, signal_group
from openheim.sandbox.process import stop_tree
from openheim.sandbox.sandbox import Launch, Sandbox

#: Longest JSON-RPC line accepted from a server; a longer one ends the connection.
MAX_LINE_BYTES = 32 * 1024 * 1024
#: After stdin is closed, how long the server gets to exit by itself (as the MCP spec asks).
EXIT_GRACE_SECS = 2.0
#: After SIGTERM to the group, how long until SIGKILL.
TERM_GRACE_SECS = 2.0
_READ_CHUNK = 64 * 1024


@asynccontextmanager
async def open_stdio_transport(
    config: McpServerConfig,
    *,
    errlog: TextIO,
    exited: trio.Event,
    sandbox: Sandbox | None = None,
) -> AsyncIterator[tuple[Any, Any, int]]:
    """Start the server; yield the session's read and write streams and the server's pid.

    ``exited`` is set when the server process ends or its stdio breaks. With a ``sandbox``
    the server runs inside it, in its environment (plus the server's own ``env``), in
    ``config.cwd`` if the sandbox may write there, else in the sandbox's workspace.
    """
    import anyio
    import mcp_types as types
    from mcp.client.stdio import get_default_environment
    from mcp.shared.message import SessionMessage

    assert config.command is not None
    argv = [config.command, *config.args]
    launch = Launch(argv, get_default_environment() | dict(config.env))
    cwd = config.cwd
    if sandbox is not None:
        place = Path(await trio.Path(config.cwd).resolve()) if config.cwd else None
        folder = place if place and sandbox.policy.may_write(place) else sandbox.policy.workspace
        cwd = str(folder)
        launch = sandbox.prepare(argv, folder, config.env)
    try:
        process = await trio.lowlevel.open_process(
            launch.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env=launch.env,
            cwd=cwd,
            start_new_session=True,  # its own process group: pgid == pid
        )
    except BaseException:
        launch.discard()
        raise
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout
    incoming, read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write, outgoing = anyio.create_memory_object_stream[SessionMessage](0)

    #: Whether the server ever answered: one that never did gets no exit grace at shutdown.
    answered = False

    def parse(line: bytes) -> SessionMessage | Exception:
        try:
            return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
        except ValueError as exc:  # the session reports it; the connection goes on
            return exc

    async def pump_stdout() -> None:
        nonlocal answered
        buffer = bytearray()
        async with incoming:
            while chunk := await stdout.receive_some(_READ_CHUNK):
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        answered = True
                        await incoming.send(parse(line))
                if len(buffer) > MAX_LINE_BYTES:
                    await incoming.send(ValueError("a message longer than 32 MiB"))
                    break
        exited.set()

    async def pump_stdin() -> None:
        async with outgoing:
            async for message in outgoing:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                try:
                    await stdin.send_all(data.encode() + b"\n")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    exited.set()
                    return

    async def watch_exit() -> None:
        await process.wait()
        exited.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_stdout)
            nursery.start_soon(pump_stdin)
            nursery.start_soon(watch_exit)
            try:
                yield read, write, process.pid
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await _stop(process, grace=EXIT_GRACE_SECS if answered else 0.0)
            await stop_tree(process, launch)


async def _stop(process: trio.Process, *, grace: float) -> None:
    """Close stdin, let the server exit, then end whatever is left of its group."""
    pgid = process.pid
    assert process.stdin is not None and process.stdout is not None
    with suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await process.stdin.aclose()
    with trio.move_on_after(grace):
        await process.wait()
    if group_alive(pgid):
        signal_group(pgid, signal.SIGTERM)
        with trio.move_on_after(TERM_GRACE_SECS):
            while group_alive(pgid):
                if process.returncode is None:
                    process.poll()  # reaps a dead leader, which would keep the group alive
                await trio.sleep(0.02)
        signal_group(pgid, signal.SIGKILL)
    await process.wait()
    await process.stdout.aclose()
