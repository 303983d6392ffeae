"""One Streamable HTTP ``/acp`` connection: the ACP dispatcher of ``/acp`` over WebSocket and of
stdio, fed by POSTs instead of a socket's reader, writing to SSE streams instead of one socket.

The actor holds, in one nursery: the reader (POSTed messages in arrival order, through a
bounded inbox: a POST waits while it is full), the dispatcher's tasks and the idle watch.
Outgoing messages go where ``StreamRouter`` says, each stream through a bounded outbox of its
own that exists whether or not a GET reads it, so what the agent says before the client opens
a stream waits for it there. A newer GET for a stream takes it over from an older one.

How a connection ends (sessions then go to their grace, as when a WebSocket drops; a running
turn goes on or is cancelled per ``on_disconnect``):

- **DELETE** by the client.
- **Idle**: no stream open and no POST for ``disconnect_grace_secs`` (at least ``MIN_IDLE``).
- **Slow client**: an outbox stayed full for ``slow_client_timeout_secs``; an outbox no GET
  reads fills the same way, so a client that never opens a stream it is sent to ends like one
  that never reads it (the message and later ones are dropped: nobody is reading them).
- **Server shutdown**: turns are cancelled, prompts answered, streams flushed and ended.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import AsyncIterator, MutableSet
from contextlib import asynccontextmanager

import attrs
import trio

from openheim.acp.codec import ErrorResponse, Incoming, Message, Request, RequestId, Response
from openheim.acp.dispatcher import AcpDispatcher, open_dispatcher
from openheim.acp.outbox import Outbox, merge_chunks
from openheim.config.model import DisconnectPolicy
from openheim.foundation.concurrency import open_service_nursery
from openheim.logs import bind_log_context
from openheim.server.acp_http_core import (
    HttpRefusal,
    Stream,
    StreamRouter,
    unknown_connection,
)
from openheim.server.tenants import Tenant
from openheim.server.ws import FLUSH_GRACE, OUTBOUND_FRAMES, Connection, ConnectionSettings

log = logging.getLogger(__name__)

#: POSTed messages waiting for the dispatcher; when full, POSTs wait (backpressure).
INBOX = 16
#: The shortest idle time before a connection without streams ends (time to open one).
MIN_IDLE = 1.0
#: HTTP connections one tenant may hold at once (each is a dispatcher even with no socket).
MAX_PER_TENANT = 64


class Ending(enum.Enum):
    DELETED = "deleted by the client"
    IDLE = "idle: no stream and no request"
    SLOW = "client too slow: it stopped reading"
    SHUTDOWN = "server shutting down"


@attrs.define(eq=False)
class _Stream:
    """One stream's outbox and the GET reading it now."""

    outbox: Outbox[Message]
    reader: trio.CancelScope | None = None


class HttpConnection:
    """One ``Acp-Connection-Id``: a dispatcher, its inbox and its streams' outboxes."""

    transport = "http"

    def __init__(self, tenant: Tenant, settings: ConnectionSettings) -> None:
        self.id = str(uuid.uuid4())
        self.tenant = tenant
        self.done = trio.Event()
        self.router = StreamRouter()
        self._settings = settings
        self._inbox, self._inbox_out = trio.open_memory_channel[Incoming](INBOX)
        self._outboxes: dict[Stream, _Stream] = {}
        self._sealed = False
        #: ``initialize`` requests answered in their POST's body, not on a stream.
        self._answers: dict[RequestId, trio.MemorySendChannel[Message]] = {}
        self._reading = trio.CancelScope()
        self.ending: Ending | None = None
        self._readers = 0
        self._posting = 0
        self._activity = trio.Event()

    def queued(self) -> int:
        """Messages waiting in the outboxes (for metrics)."""
        return sum(len(stream.outbox) for stream in self._outboxes.values())

    def shut_down(self) -> None:
        self._end(Ending.SHUTDOWN)

    def delete(self) -> None:
        self._end(Ending.DELETED)

    def _end(self, ending: Ending) -> None:
        if self.ending is None:
            self.ending = ending
        self._inbox.close()
        self._reading.cancel()

    def _touch(self) -> None:
        self._activity.set()
        self._activity = trio.Event()

    # --- the actor ---------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        bind_log_context(replace=True, tenant=self.tenant.name, connection_id=self.id[:12])
        log.info("connection opened (/acp over HTTP)")
        try:
            async with (
                open_service_nursery() as nursery,
                open_dispatcher(
                    self.tenant.registry,
                    self._send,
                    self._settings.acp,
                    on_detach=self.tenant.release,
                ) as dispatcher,
            ):
                self.tenant.holders.add(dispatcher)
                try:
                    nursery.start_soon(self._watch_idle)
                    task_status.started()
                    with self._reading:
                        async for message in self._inbox_out:
                            await dispatcher.receive(message)
                    await self._close(dispatcher)
                finally:
                    self.tenant.holders.discard(dispatcher)
        finally:
            self._end(self.ending or Ending.SHUTDOWN)
            self._seal()
            for waiter in self._answers.values():
                waiter.close()
            log.info("connection closed (%s)", (self.ending or Ending.SHUTDOWN).value)
            self.done.set()

    async def _close(self, dispatcher: AcpDispatcher) -> None:
        """After reading ended: settle the turns; on shutdown let the streams flush."""
        if self.ending is Ending.SHUTDOWN:
            await dispatcher.finish(cancel_turns=True)
            self._seal()  # each stream sends what is queued, then ends
            with trio.move_on_after(FLUSH_GRACE):
                while self._readers:
                    await self._activity.wait()
            return
        cancel = self._settings.on_disconnect is DisconnectPolicy.CANCEL
        await dispatcher.finish(cancel_turns=cancel, grace=0)

    def _seal(self) -> None:
        self._sealed = True
        for stream in self._outboxes.values():
            stream.outbox.close()

    async def _watch_idle(self) -> None:
        idle_for = max(self.tenant.grace, MIN_IDLE)
        while True:
            changed = self._activity
            if self._readers or self._posting:
                await changed.wait()
                continue
            with trio.move_on_after(idle_for):
                await changed.wait()
            if not changed.is_set():
                log.info("no stream open and no request for %g s: ending the connection", idle_for)
                self._end(Ending.IDLE)
                return

    # --- input: POSTs ------------------------------------------------------------------------

    async def post(self, message: Incoming, session_header: str | None) -> None:
        """Hand a POSTed message to the dispatcher, in arrival order; waits while the inbox is
        full. Raises ``HttpRefusal`` (404) once the connection has ended."""
        if isinstance(message, Request) and message.id not in self._answers:
            self.router.request_in(message, session_header)
        self._posting += 1
        self._touch()
        try:
            await self._inbox.send(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise unknown_connection() from None
        finally:
            self._posting -= 1
            self._touch()

    async def initialize(self, request: Request) -> Message:
        """Post ``initialize`` and wait for its answer, which goes in the POST's body."""
        send, receive = trio.open_memory_channel[Message](1)
        self._answers[request.id] = send
        self._posting += 1  # the answer is the client's only news yet: not idle until sent
        try:
            await self.post(request, None)
            try:
                return await receive.receive()
            except trio.EndOfChannel:
                raise HttpRefusal(503, "shutting_down", "the connection ended") from None
        finally:
            self._answers.pop(request.id, None)
            self._posting -= 1
            self._touch()

    # --- output: streams ---------------------------------------------------------------------

    def _outbox(self, stream: Stream) -> _Stream:
        outbox = self._outboxes.get(stream)
        if outbox is None:
            outbox = self._outboxes[stream] = _Stream(Outbox(OUTBOUND_FRAMES, merge_chunks))
            if self._sealed:
                outbox.outbox.close()
        return outbox

    @asynccontextmanager
    async def reader(self, stream: Stream) -> AsyncIterator[Outbox[Message]]:
        """A GET reads ``stream`` for the body of the ``async with``; it takes the stream over
        from an older GET, and ends (cancelled) when a newer one takes it."""
        if self.ending is not None:
            raise unknown_connection()
        outbox = self._outbox(stream)
        if outbox.reader is not None:
            outbox.reader.cancel()
        if stream is not None:
            self.router.opened(stream)
        scope = trio.CancelScope()
        outbox.reader = scope
        self._readers += 1
        self._touch()
        try:
            with scope:
                yield outbox.outbox
        finally:
            if outbox.reader is scope:
                outbox.reader = None
            self._readers -= 1
            self._touch()

    async def _send(self, message: Message) -> None:
        """The dispatcher's one way out."""
        if isinstance(message, Response | ErrorResponse):
            waiter = self._answers.pop(message.id, None)
            if waiter is not None:
                waiter.send_nowait(message)
                return
        await self._enqueue(self._outbox(self.router.route(message)).outbox, message)

    async def _enqueue(self, outbox: Outbox[Message], message: Message) -> None:
        """Queue an event; an outbox that stays full for the slow-client timeout ends the
        connection (as ``ws.Connection`` does with its one queue)."""
        if self.ending is Ending.SLOW:
            return
        try:
            outbox.put_nowait(message)
            return
        except trio.WouldBlock:
            pass
        except trio.ClosedResourceError:
            return
        timeout = self._settings.slow_client_timeout
        with trio.move_on_after(timeout) as waiting:
            try:
                await outbox.put(message)
            except trio.ClosedResourceError:
                return
        if waiting.cancelled_caught and self.ending is not Ending.SLOW:
            log.warning(
                "tenant %s: a client read nothing of a stream for %g s: disconnecting it",
                self.tenant.name,
                timeout,
            )
            self.ending = Ending.SLOW
            self._end(Ending.SLOW)


class HttpConnections:
    """Every HTTP connection of the server, each an actor in this object's nursery (they
    outlive the requests that drive them)."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._open: dict[str, HttpConnection] = {}

    @classmethod
    @asynccontextmanager
    async def open(cls) -> AsyncIterator[HttpConnections]:
        """Connections for the ``async with`` body; any still open at its end are cancelled
        (``ServerState.drain`` has ended them properly by then)."""
        async with open_service_nursery() as nursery:
            yield cls(nursery)

    async def start(
        self,
        tenant: Tenant,
        settings: ConnectionSettings,
        live: MutableSet[Connection | HttpConnection],
    ) -> HttpConnection:
        """A new connection, listed in ``live`` while it runs; 429 past ``MAX_PER_TENANT``."""
        if sum(c.tenant is tenant for c in self._open.values()) >= MAX_PER_TENANT:
            raise HttpRefusal(
                429,
                "too_many_connections",
                f"this tenant has {MAX_PER_TENANT} HTTP connections open; "
                "fix: DELETE /acp the ones no longer used",
            )
        connection = HttpConnection(tenant, settings)
        self._open[connection.id] = connection
        live.add(connection)
        await self._nursery.start(self._run, connection, live)
        return connection

    async def _run(
        self,
        connection: HttpConnection,
        live: MutableSet[Connection | HttpConnection],
        task_status: trio.TaskStatus[None],
    ) -> None:
        try:
            await connection.run(task_status)
        finally:
            self._open.pop(connection.id, None)
            live.discard(connection)

    def find(self, connection_id: str, tenant: str) -> HttpConnection:
        """The tenant's open connection; another tenant's is as unknown as a made-up id."""
        connection = self._open.get(connection_id)
        if connection is None or connection.tenant.name != tenant or connection.ending:
            raise unknown_connection()
        return connection
