"""WebSocket faces: ``/ws`` (agent + fs multiplexed, openheim's protocol) and ``/acp`` (bare ACP).

Every ``/ws`` text frame is ``{"channel": "agent"|"fs", "data": ...}`` both ways. A frame we
cannot route (bad JSON, not an object, no or unknown ``channel``, no ``data``) is answered on
``fs`` with ``{"type": "error", "message": "Invalid payload: ..."}`` and the connection stays
open. Binary frames are ignored. ``/acp`` carries one JSON-RPC message per text frame and
answers the upgrade with an ``Acp-Connection-Id`` header (the ACP WebSocket transport).

One ``Connection`` actor per socket supervises, in one nursery: the reader (this task), the
single writer fed by a bounded channel, the ACP dispatcher's tasks and the fs channel (fed by
its own bounded channel, so slow file work never stalls the reader).

Close codes:

- **1001** server shutdown: running turns are cancelled and their prompts answered first.
- **1009** a frame over ``max_frame_bytes`` (sent by the WebSocket layer, which never buffers
  more than that).
- **4401** no or unknown token (the upgrade is accepted, then closed, so browsers can see
  the code).
- **4408** slow client: the outbound queue stayed full for ``slow_client_timeout_secs``. The
  close frame is best effort: a client that reads nothing sees the TCP connection drop
  instead (``worker.StallGuard``).

Sessions stay alive when the socket drops (a running turn goes on, or is cancelled with
``on_disconnect = "cancel"``) for ``disconnect_grace_secs``; see ``tenants``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
import trio

from openheim.acp.codec import (
    Message,
    Notification,
    encode_text,
    parse_message,
    parse_text,
    to_json,
)
from openheim.acp.dispatcher import AcpDispatcher, open_dispatcher
from openheim.acp.outbox import Outbox, merge_chunks
from openheim.acp.settings import AcpSettings
from openheim.config.model import DisconnectPolicy
from openheim.logs import bind_log_context
from openheim.server.envelope import Envelope, FrameError, envelope_text, parse_envelope
from openheim.server.fs.channel import FsChannel, frame_error, greeting
from openheim.server.tenants import Tenant
from openheim.server.ws_frames import SEND_BATCH

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_SLOW_CLIENT = 4408

#: Frames waiting for the writer; a client that lets it fill for the slow-client timeout is cut.
OUTBOUND_FRAMES = 128
#: fs requests waiting for the fs channel; when full the reader waits (backpressure).
FS_REQUESTS = 16
#: On shutdown, how long queued frames (the prompts' ``cancelled`` answers) may take to flush.
FLUSH_GRACE = 2.0
#: Seconds between SSE keepalive comments on an idle ``/acp`` HTTP stream (proxies commonly
#: drop connections idle for 60 s).
SSE_KEEPALIVE = 15.0


# --- ASGI, named -----------------------------------------------------------------------------


class AsgiWebSocket:
    """The ASGI WebSocket calls with names, for one connection."""

    def __init__(
        self,
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
        *,
        batches: bool = False,
    ) -> None:
        self._receive = receive
        self._send = send
        #: The server takes several frames in one message (``ws_frames.SEND_BATCH``).
        self.batches = batches

    async def wait_connect(self) -> bool:
        return (await self._receive())["type"] == "websocket.connect"

    async def reject(self, status: int, body: dict[str, Any]) -> None:
        """Answer the upgrade with a plain HTTP response instead of a WebSocket."""
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await self._send(
            {"type": "websocket.http.response.start", "status": status, "headers": headers}
        )
        await self._send({"type": "websocket.http.response.body", "body": data})

    async def accept(
        self, headers: Iterable[tuple[bytes, bytes]] = (), *, subprotocol: str | None = None
    ) -> None:
        message: dict[str, Any] = {"type": "websocket.accept", "headers": list(headers)}
        if subprotocol is not None:
            message["subprotocol"] = subprotocol
        await self._send(message)

    async def receive_text(self) -> str | None:
        """The next text frame; None once the client is gone. Binary frames are skipped."""
        while True:
            event = await self._receive()
            if event["type"] == "websocket.disconnect":
                return None
            if event["type"] == "websocket.receive" and event.get("text") is not None:
                return event["text"]

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_texts(self, texts: list[str]) -> None:
        """Several text frames, in one write where the server allows it (for one frame too:
        that way skips hypercorn's dispatch of ASGI messages)."""
        if self.batches:
            await self._send({"type": SEND_BATCH, "texts": texts})
            return
        for text in texts:
            await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str = "") -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


def acp_connection_header() -> tuple[bytes, bytes]:
    return (b"acp-connection-id", str(uuid.uuid4()).encode())


# --- framing: what differs between /ws and /acp ------------------------------------------------


@attrs.frozen
class FsFrame:
    """A frame of ``/ws``'s fs channel, waiting in the outbox."""

    data: dict[str, Any]


#: What waits in a connection's outbox: encoded by the writer, so text chunks can merge first.
Outgoing = Message | FsFrame


class _BareAcp:
    """``/acp``: one JSON-RPC message per text frame."""

    path = "/acp"

    def __init__(self, enqueue: Callable[[Outgoing], Awaitable[None]]) -> None:
        self._enqueue = enqueue

    async def send_agent(self, message: Message) -> None:
        await self._enqueue(message)

    def encode(self, item: Outgoing) -> str:
        assert not isinstance(item, FsFrame)
        return encode_text(item)

    async def open(self, tenant: Tenant, nursery: trio.Nursery) -> None:
        pass

    async def route(self, text: str, dispatcher: AcpDispatcher) -> None:
        await dispatcher.receive(parse_text(text))

    def close_input(self) -> None:
        pass


class _Multiplexed:
    """``/ws``: agent and fs channels in envelopes; fs requests go to their own actor over a
    bounded channel, so slow file work never stalls the reader."""

    path = "/ws"

    def __init__(self, enqueue: Callable[[Outgoing], Awaitable[None]]) -> None:
        self._enqueue = enqueue
        self._fs_requests: trio.MemorySendChannel[Any] | None = None

    async def send_agent(self, message: Message) -> None:
        await self._enqueue(message)

    def encode(self, item: Outgoing) -> str:
        if isinstance(item, FsFrame):
            return envelope_text("fs", item.data)
        return envelope_text("agent", to_json(item))

    async def _send_fs(self, data: dict[str, Any]) -> None:
        await self._enqueue(FsFrame(data))

    async def open(self, tenant: Tenant, nursery: trio.Nursery) -> None:
        fs = FsChannel(tenant.root, self._send_fs, nursery, quota=tenant.runtime.quota)
        self._fs_requests, fs_inbox = trio.open_memory_channel[Any](FS_REQUESTS)
        nursery.start_soon(fs.serve, fs_inbox)
        await self._send_fs(greeting())

    async def route(self, text: str, dispatcher: AcpDispatcher) -> None:
        match parse_envelope(text):
            case FrameError(message):
                await self._send_fs(frame_error(message))
            case Envelope("agent", data):
                await dispatcher.receive(parse_message(data))
            case Envelope(_, data):
                assert self._fs_requests is not None
                await self._fs_requests.send(data)

    def close_input(self) -> None:
        if self._fs_requests is not None:
            self._fs_requests.close()


# --- the connection actor --------------------------------------------------------------------


@attrs.frozen
class ConnectionSettings:
    acp: AcpSettings
    slow_client_timeout: float
    on_disconnect: DisconnectPolicy
    sse_keepalive: float = SSE_KEEPALIVE


class Connection:
    """One client's socket: reader, single writer, ACP dispatcher and (``/ws``) fs channel."""

    transport = "websocket"

    def __init__(
        self,
        socket: AsgiWebSocket,
        tenant: Tenant,
        settings: ConnectionSettings,
        *,
        multiplexed: bool,
    ) -> None:
        self.tenant = tenant
        self.done = trio.Event()
        self._socket = socket
        self._settings = settings
        self._framing = (_Multiplexed if multiplexed else _BareAcp)(self._enqueue)
        self._reading = trio.CancelScope()
        self._close_code: int | None = None
        self._slow = False
        self._outbox: Outbox[Outgoing] = Outbox(OUTBOUND_FRAMES, merge_chunks)
        #: A write is under way: the writer's, or one made straight from ``_enqueue``.
        self._writing = 0

    def queued(self) -> int:
        """Frames waiting for the writer (for metrics)."""
        return len(self._outbox)

    def shut_down(self) -> None:
        """Server shutdown: stop reading, cancel turns, answer prompts, close with 1001."""
        self._end(CLOSE_GOING_AWAY)

    def _end(self, code: int) -> None:
        if self._close_code is None:
            self._close_code = code
        self._reading.cancel()

    async def run(self) -> None:
        bind_log_context(tenant=self.tenant.name, connection_id=uuid.uuid4().hex[:12])
        log.info("connection opened (%s)", self._framing.path)
        try:
            await self._run()
        finally:
            log.info("connection closed (code %s)", self._close_code or "by the client")
            self.done.set()

    async def _run(self) -> None:
        written = trio.Event()
        framing = self._framing
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write, written)
            try:
                async with open_dispatcher(
                    self.tenant.registry,
                    framing.send_agent,
                    self._settings.acp,
                    on_detach=self.tenant.release,
                ) as dispatcher:
                    self.tenant.holders.add(dispatcher)
                    try:
                        await framing.open(self.tenant, nursery)
                        with self._reading:
                            while (text := await self._socket.receive_text()) is not None:
                                await framing.route(text, dispatcher)
                        framing.close_input()
                        await self._close(dispatcher, written)
                    finally:
                        self.tenant.holders.discard(dispatcher)
            finally:
                nursery.cancel_scope.cancel()

    async def _close(self, dispatcher: AcpDispatcher, written: trio.Event) -> None:
        """After reading ended: settle the turns, then close the socket if it is still there."""
        code = self._close_code
        if code == CLOSE_GOING_AWAY:
            await dispatcher.finish(cancel_turns=True)
            self._outbox.close()  # the writer sends what is queued, then ends
            with trio.move_on_after(FLUSH_GRACE):
                await written.wait()
            await self._socket.close(code, "server shutting down")
            return
        cancel = self._settings.on_disconnect is DisconnectPolicy.CANCEL
        await dispatcher.finish(cancel_turns=cancel, grace=0)
        if code is not None:
            await self._socket.close(code, "client too slow: it stopped reading")

    # --- output: one writer, one bounded queue ---------------------------------------------

    async def _write(self, written: trio.Event) -> None:
        """The writer: everything queued goes out in one write."""
        outbox, encode = self._outbox, self._framing.encode
        try:
            while True:
                try:
                    items = await outbox.take()
                except trio.EndOfChannel:
                    break
                self._writing += 1
                try:
                    await self._socket.send_texts([encode(item) for item in items])
                finally:
                    self._writing -= 1
        finally:
            outbox.close()  # nobody writes any more: queueing ends at once
            written.set()

    async def _enqueue(self, item: Outgoing) -> None:
        """Send or queue a frame; a queue that stays full for the slow-client timeout ends
        the connection (the frame and any later ones are dropped: nobody is reading them).

        A session update, with nothing queued and no write under way, is written at once
        from the calling task (the turn's): a streamed chunk then reaches the socket without
        waking the writer, one task switch and one round of the scheduler fewer per chunk.
        Order holds: the socket takes a write whole before any other task runs, and the rest
        of a partial one goes under the server's send lock, which the writer's next write
        waits for. That rest holds the turn, as a full queue would, until the client reads
        or the server's stall timeout (``slow_client_timeout_secs``) closes the socket.
        Everything else (replies, fs frames) goes through the writer, so the reader never
        waits on the socket."""
        if self._slow:
            return
        if (
            not self._writing
            and not self._outbox
            and self._socket.batches
            and isinstance(item, Notification)
            and item.method == "session/update"
        ):
            if self._outbox.closed:
                return
            self._writing += 1
            try:
                await self._socket.send_texts([self._framing.encode(item)])
            finally:
                self._writing -= 1
            return
        try:
            self._outbox.put_nowait(item)
            return
        except trio.WouldBlock:
            pass
        except trio.ClosedResourceError:
            return
        with trio.move_on_after(self._settings.slow_client_timeout) as waiting:
            try:
                await self._outbox.put(item)
            except trio.ClosedResourceError:
                return
        if waiting.cancelled_caught and not self._slow:
            log.warning(
                "tenant %s: a client read nothing for %g s: disconnecting it",
                self.tenant.name,
                self._settings.slow_client_timeout,
            )
            self._slow = True
            self._end(CLOSE_SLOW_CLIENT)
