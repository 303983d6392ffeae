"""Hypercorn's trio worker, with two changes: a peer that stops reading is cut off, and
writes that fit the socket at once take a short way.

Hypercorn writes to the socket inside a shielded cancel scope, so a send to a client that
never reads waits forever: no timeout, no cancellation, not even server shutdown can end it
(the connection's task group waits for that send). ``worker_serve`` here is hypercorn 0.18's
``hypercorn.trio.run.worker_serve`` trimmed to plain TCP, with each accepted stream wrapped in
``StallGuard``: a write that makes no progress for ``stall_timeout`` seconds closes the socket,
which wakes the shielded send and lets hypercorn see a closed connection. Each connection is a
``GuardedTCPServer``, whose writes skip hypercorn's lock and scope when the socket takes them
whole. The rest (lifespan, HTTP/1.1, WebSocket, keep-alive, graceful shutdown) is hypercorn's
own code, imported, but for the WebSocket stream's frame handling (``ws_frames``) and the
reason phrase in HTTP/1.1 status lines (``status_line``).

TLS is left to a reverse proxy: ``serve`` speaks plain HTTP.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

from openheim.server import status_line, ws_frames

log = logging.getLogger(__name__)

#: Bytes per write; the stall timeout applies to each, so slow but steady clients are fine.
_WRITE_PIECE = 64 * 1024


class GuardedTCPServer(TCPServer):
    """Hypercorn's connection, with a shorter way for its writes (each frame the app sends).

    Hypercorn takes a lock and enters a shielded cancel scope for every write. When nobody
    holds the lock, a write that the socket takes whole at once (``StallGuard.write_nowait``)
    needs neither: no other task can run between its first byte and its last. Only the rest
    of a partial write goes the long way, under the lock, so bytes never interleave.
    """

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData) or self.send_lock.locked():
            await super().protocol_send(event)
            return
        guard: StallGuard = self.stream  # type: ignore[assignment]
        view = memoryview(event.data)
        try:
            sent = guard.write_nowait(view)
        except trio.BrokenResourceError:
            await self.protocol.handle(Closed())
            return
        if sent == len(view):
            await trio.lowlevel.checkpoint()
            return
        self.send_lock.acquire_nowait()  # free, and nothing ran since the write
        try:
            with trio.CancelScope(shield=True):
                await guard.send_rest(view[sent:])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self.protocol.handle(Closed())
        finally:
            self.send_lock.release()


class StallGuard:
    """A ``trio.SocketStream`` whose writes give up (closing it) when the peer stops reading.

    It has no ``do_handshake``: that is how hypercorn tells a plain stream from TLS.
    """

    def __init__(self, stream: trio.SocketStream, stall_timeout: float) -> None:
        self._stream = stream
        self._stall_timeout = stall_timeout
        self.socket = stream.socket
        self._fd = stream.socket.fileno()

    def write_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """As much of ``data`` as the socket takes now, in one write(2); how much that was.

        Most writes (a few frames) fit the socket buffer at once, and this does them without
        the cancel scope and trio's socket machinery, which cost more than the write itself.
        """
        try:
            return os.write(self._fd, memoryview(data)[:_WRITE_PIECE])
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise trio.BrokenResourceError(f"the peer is gone: {exc}") from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        sent = self.write_nowait(view)
        if sent == len(view):
            await trio.lowlevel.checkpoint()
            return
        await self.send_rest(view[sent:])

    async def send_rest(self, view: memoryview) -> None:
        """The rest of a write the socket did not take at once, piece by piece, each within
        the stall timeout."""
        for start in range(0, len(view), _WRITE_PIECE):
            with trio.move_on_after(self._stall_timeout) as waited:
                await self._stream.send_all(view[start : start + _WRITE_PIECE])
            if waited.cancelled_caught:
                log.warning(
                    "a client read nothing for %g s: closing its connection", self._stall_timeout
                )
                await self._stream.aclose()
                raise trio.BrokenResourceError("the peer stopped reading")

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._stream.aclose()


async def worker_serve(
    app: Any,
    config: Config,
    *,
    stall_timeout: float,
    shutdown_trigger: Callable[[], Awaitable[object]],
    drain: Callable[[], Awaitable[object]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI ``app`` on ``config.bind`` until ``shutdown_trigger`` returns.

    Starts with the bound URLs (a ``:0`` port is resolved); a bind error raises ``OSError``
    before that. On shutdown the listeners close first, then ``drain`` runs (the app closes
    its WebSockets), then open connections get ``config.graceful_timeout`` seconds before
    they are cancelled.
    """
    ws_frames.install()
    status_line.install()
    sockets = config.create_sockets()
    listeners = []
    binds = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
        binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
    wrapped = wrap_app(ws_frames.with_send_batch(app), config.wsgi_max_body_size, "asgi")
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)

    async def handle(stream: trio.SocketStream) -> None:
        guarded: Any = StallGuard(stream, stall_timeout)
        state = ConnectionState(lifespan_state.copy())
        await GuardedTCPServer(wrapped, config, context, state, guarded).run()

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            try:
                async with trio.open_nursery() as accepting:
                    accepting.start_soon(
                        partial(
                            trio.serve_listeners,
                            handle,
                            listeners,
                            handler_nursery=server_nursery,
                        )
                    )
                    task_status.started(binds)
                    await shutdown_trigger()
                    accepting.cancel_scope.cancel()
                if drain is not None:
                    await drain()
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
