"""One actor per MCP server: it owns the connection and serves tool calls from sessions.

The SDK requires ``stdio_client`` and ``ClientSession`` to be entered and exited in one task,
so one owner task holds them; sessions never touch the SDK and talk to it over a bounded
channel instead, each request carrying its own reply channel. When the server dies, calls in
flight are answered with an error at once and ``run`` reconnects with exponential backoff.

This module imports ``mcp`` lazily so that importing it costs nothing without MCP servers.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio

from openheim.config.model import McpServerConfig
from openheim.foundation.fsutil import PRIVATE_FILE_MODE, make_folders
from openheim.foundation.models import ToolResult
from openheim.mcp.results import to_tool_result
from openheim.sandbox.sandbox import Sandbox

#: Requests waiting for the owner task; senders wait when it is full.
REQUEST_BUFFER = 16
#: A connection that lasted this long resets the restart backoff.
STABLE_SECS = 10.0
#: A server's stderr log is moved to ``.1`` when it starts bigger than this.
LOG_ROTATE_BYTES = 4 * 1024 * 1024


class ServerState(enum.StrEnum):
    STARTING = "starting"
    CONNECTED = "connected"
    FAILED = "failed"


@attrs.frozen
class McpToolInfo:
    """A tool as the server listed it."""

    name: str
    description: str
    input_schema: Mapping[str, Any]


@attrs.frozen
class ServerStatus:
    state: ServerState
    error: str | None = None
    tool_count: int = 0


@attrs.frozen
class _CallRequest:
    tool: str
    arguments: dict[str, Any]
    reply: trio.MemorySendChannel[ToolResult]
    #: Cancelled by the caller when it gives up; the SDK then sends ``notifications/cancelled``.
    scope: trio.CancelScope


class _ServerGone(Exception):
    """The server closed its connection (it exited or crashed)."""


class _WatchedStream:
    """An HTTP session's read stream, setting ``closed`` when the transport ends it.

    The SDK notices the end itself but does not tell us; this is how the owner task learns
    that the server went away while no call is in flight, so it can reconnect at once.
    (Our own stdio transport reports the server's exit directly.)
    """

    def __init__(self, inner: Any, closed: trio.Event) -> None:
        self._inner = inner
        self._closed = closed

    async def __aenter__(self) -> _WatchedStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> bool | None:
        self._closed.set()
        return await self._inner.__aexit__(*exc)

    def __aiter__(self) -> _WatchedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except StopAsyncIteration:
            self._closed.set()
            raise

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except BaseException as exc:
            if type(exc).__name__ in {"EndOfStream", "ClosedResourceError"}:
                self._closed.set()
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class McpServerActor:
    """A configured server: its status, its tools, and ``call`` for the sessions."""

    def __init__(
        self,
        config: McpServerConfig,
        *,
        errlog: TextIO | None = None,
        log_path: Path | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.config = config
        #: Where a stdio server runs: None for as configured (an operator's trusted server).
        self._sandbox = sandbox
        #: Where a stdio server's stderr goes: ``errlog`` if given, else ``log_path``, else ours.
        self._errlog = errlog
        self.log_path = log_path
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self.status = ServerStatus(ServerState.STARTING)
        self.tools: tuple[McpToolInfo, ...] = ()
        #: How many times the server has connected; tests and status lines read it.
        self.connections = 0
        #: How many times it was started again after dying or failing to start.
        self.restarts = 0
        #: The stdio server's process (and process group) id while it runs.
        self.pid: int | None = None
        self._last_quick_restart = -STABLE_SECS
        #: How the first start ended (connected or failed); None while it is still going on.
        self.first_status: ServerStatus | None = None
        #: Set when the first start has ended: a session's first model request waits for it.
        self.first_settled = trio.Event()
        self._changed = trio.Event()
        self._requests, self._inbox = trio.open_memory_channel[_CallRequest](REQUEST_BUFFER)

    @property
    def name(self) -> str:
        return self.config.name

    def _set(self, status: ServerStatus, tools: tuple[McpToolInfo, ...] = ()) -> None:
        self.status = status
        self.tools = tools
        if status.state is not ServerState.STARTING and self.first_status is None:
            self.first_status = status
            self.first_settled.set()
        self._changed.set()
        self._changed = trio.Event()

    async def wait_settled(self) -> ServerStatus:
        """Wait until the server is connected or has failed (a pending tool call uses it)."""
        while self.status.state is ServerState.STARTING:
            await self._changed.wait()
        return self.status

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Call a tool; every failure, including a dying server, comes back as an error."""
        if self.status.state is not ServerState.CONNECTED:
            return ToolResult(self._unavailable(), is_error=True)
        reply, answer = trio.open_memory_channel[ToolResult](1)
        scope = trio.CancelScope()
        async with answer:
            try:
                await self._requests.send(_CallRequest(tool, arguments, reply, scope))
                return await answer.receive()
            except trio.EndOfChannel:
                return ToolResult(
                    f"MCP server {self.name!r} stopped before answering {tool!r}", is_error=True
                )
            finally:
                scope.cancel()  # a no-op once answered; tells the server when we gave up

    def _unavailable(self) -> str:
        status = self.status
        if status.state is ServerState.FAILED:
            return f"MCP server {self.name!r} is not available: {status.error}"
        return f"MCP server {self.name!r} is still starting"

    async def run(self) -> None:
        """Connect, serve, and reconnect until cancelled.

        A server that was up and dies is started again at once (the next turn finds it back),
        but only once per ``STABLE_SECS``; failing again, or failing to start, backs off
        exponentially from ``backoff_initial`` to ``backoff_max``.
        """
        delay = self._backoff_initial
        while True:
            started = trio.current_time()
            connections = self.connections
            try:
                await self._connect_and_serve()
                error = "the server exited"
            except _ServerGone as exc:
                error = str(exc)
            except BaseExceptionGroup as group:
                cancelled, rest = group.split(trio.Cancelled)
                if cancelled is not None:
                    raise cancelled from None  # we are being stopped; the rest is teardown noise
                error = _describe(rest or group)
            except Exception as exc:
                error = _describe(exc)
            self._drain_pending()
            self.restarts += 1
            if self.connections > connections and self._may_restart_at_once():
                self._last_quick_restart = trio.current_time()
                self._set(ServerStatus(ServerState.STARTING, error=f"restarting: {error}"))
                continue
            self._set(ServerStatus(ServerState.FAILED, error=error))
            if trio.current_time() - started > STABLE_SECS:
                delay = self._backoff_initial
            await trio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)
            self._set(ServerStatus(ServerState.STARTING))

    def _may_restart_at_once(self) -> bool:
        return trio.current_time() - self._last_quick_restart > STABLE_SECS

    def _drain_pending(self) -> None:
        """Requests queued for a connection that is gone: close their replies (callers see
        an error at once instead of waiting for the next connection)."""
        while True:
            try:
                request = self._inbox.receive_nowait()
            except trio.WouldBlock:
                return
            request.reply.close()

    @contextlib.asynccontextmanager
    async def _transport(self, closed: trio.Event) -> AsyncIterator[tuple[Any, Any]]:
        """The SDK's read and write streams for this server; ``closed`` is set when the
        server goes away."""
        if self.config.transport == "http":
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            assert self.config.url is not None
            client = create_mcp_http_client(headers=dict(self.config.headers))
            async with (
                client,
                streamable_http_client(self.config.url, http_client=client) as (
                    read,
                    write,
                ),
            ):
                yield _WatchedStream(read, closed), write
            return
        from openheim.mcp.stdio import open_stdio_transport

        with self._stderr() as errlog:
            async with open_stdio_transport(
                self.config, errlog=errlog, exited=closed, sandbox=self._sandbox
            ) as (
                read,
                write,
                pid,
            ):
                self.pid = pid
                try:
                    yield read, write
                finally:
                    self.pid = None

    @contextlib.contextmanager
    def _stderr(self) -> Iterator[TextIO]:
        if self._errlog is not None or self.log_path is None:
            yield self._errlog or sys.stderr
            return
        path = self.log_path
        make_folders(path.parent, private=True)
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > LOG_ROTATE_BYTES:
                path.replace(path.with_name(path.name + ".1"))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        with open(fd, "a", encoding="utf-8", errors="replace") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log.write(f"--- {stamp} starting {self.config.command} (openheim) ---\n")
            log.flush()
            yield log

    async def _connect_and_serve(self) -> None:
        from mcp.client.session import ClientSession

        timeout = self.config.startup_timeout_secs
        closed = trio.Event()
        # Room for one: a burst of notifications while listing comes to one more listing.
        changed, changes = trio.open_memory_channel[None](1)

        async def on_message(message: Any) -> None:
            if type(message).__name__ == "ToolListChangedNotification":
                with contextlib.suppress(trio.WouldBlock):
                    changed.send_nowait(None)
            elif isinstance(message, Exception) and self.config.transport == "http":
                closed.set()  # the HTTP connection failed: reconnect rather than limp on

        # Entered and left here, in this one task, innermost first: the SDK requires it.
        async with (
            self._transport(closed) as (read, write),
            ClientSession(read, write, message_handler=on_message) as session,
        ):
            try:
                with trio.fail_after(timeout):
                    await session.initialize()
                    tools = await _list_tools(session)
            except trio.TooSlowError:
                # Reported now: leaving stdio_client waits for the process to stop.
                error = f"did not start within {timeout:g} s"
                self._set(ServerStatus(ServerState.FAILED, error=error))
                raise _ServerGone(error) from None
            self.connections += 1
            self._set(ServerStatus(ServerState.CONNECTED, tool_count=len(tools)), tools)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._serve, session, nursery)
                nursery.start_soon(self._follow_tool_list, session, changes, closed)
                await closed.wait()
                # Said before the (slow) teardown: a server about to be restarted at once is
                # "starting", so calls wait for it rather than fail.
                state = ServerState.STARTING if self._may_restart_at_once() else ServerState.FAILED
                self._set(ServerStatus(state, error="the server exited"))
                nursery.cancel_scope.cancel()
        raise _ServerGone("the server exited")

    async def _follow_tool_list(
        self, session: Any, changes: trio.MemoryReceiveChannel[None], closed: trio.Event
    ) -> None:
        """``notifications/tools/list_changed``: list again, so sessions see the new tools."""
        async for _ in changes:
            try:
                with trio.fail_after(self.config.tool_timeout_secs):
                    tools = await _list_tools(session)
            except Exception:
                closed.set()  # a server that cannot list its tools is treated as gone
                return
            self._set(ServerStatus(ServerState.CONNECTED, tool_count=len(tools)), tools)

    async def _serve(self, session: Any, nursery: trio.Nursery) -> None:
        while True:
            request = await self._inbox.receive()
            nursery.start_soon(self._serve_one, session, request)

    async def _serve_one(self, session: Any, request: _CallRequest) -> None:
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        timeout = self.config.tool_timeout_secs
        with request.reply:
            result: ToolResult
            try:
                with request.scope, trio.fail_after(timeout):
                    raw = await session.call_tool(request.tool, request.arguments)
                if request.scope.cancelled_caught:
                    return  # the caller gave up; the SDK told the server
                result = to_tool_result(raw)
            except trio.TooSlowError:
                result = ToolResult(
                    f"MCP tool {request.tool!r} timed out after {timeout:g} s", is_error=True
                )
            except MCPError as exc:
                if exc.code == CONNECTION_CLOSED:
                    message = f"MCP server {self.name!r} exited during the call"
                else:
                    message = f"MCP server {self.name!r}: {exc}"
                result = ToolResult(message, is_error=True)
            except trio.Cancelled:
                # The connection is going away: answer now, never leave the caller hanging.
                gone = ToolResult(f"MCP server {self.name!r} exited during the call", is_error=True)
                with contextlib.suppress(trio.BrokenResourceError):
                    request.reply.send_nowait(gone)
                raise
            except Exception as exc:
                result = ToolResult(f"MCP server {self.name!r}: {_describe(exc)}", is_error=True)
            with contextlib.suppress(trio.BrokenResourceError):  # the caller gave up
                request.reply.send_nowait(result)


async def _list_tools(session: Any) -> tuple[McpToolInfo, ...]:
    """Every page of ``tools/list``."""
    from mcp import types

    tools: list[McpToolInfo] = []
    cursor: str | None = None
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(
            McpToolInfo(t.name, t.description or "", dict(t.input_schema)) for t in page.tools
        )
        cursor = page.next_cursor
        if not cursor:
            return tuple(tools)


def _describe(exc: BaseException) -> str:
    """A one-line reason, looking inside the groups the SDK's task groups wrap errors in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, _ServerGone):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
