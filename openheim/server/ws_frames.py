"""Hypercorn's WebSocket stream, held to two rules it misses (hypercorn 0.18).

- **An oversized message stops the reading.** Hypercorn closes with 1009 once a message passes
  ``websocket_max_message_size``, but keeps feeding what the peer still sends into the same
  buffer (it writes, then checks): a 200 MiB message costs 200 MiB after the close. Here the
  buffer is dropped and every later frame of that connection is discarded unread into memory.
- **A frame that breaks the protocol gets a close frame.** wsproto reports invalid UTF-8 in a
  text frame (or any parse failure) as a ``CloseConnection`` with the right code (1007, 1002)
  while the connection is still open; hypercorn then drops TCP without telling the peer why.
  Here the peer gets that close frame first.

And one addition: **several frames in one write.** ASGI sends one frame per message, and each
takes hypercorn's whole send path (protocol events, the connection's lock, a socket write). A
``SEND_BATCH`` message carries a list of texts: wsproto frames each, and the bytes go to the
socket in one write. ``with_send_batch`` announces it in the WebSocket scope's extensions, so an
app only sends it to a server that understands it.

``install()`` swaps the stream class that hypercorn's HTTP/1.1 protocol instantiates; ``serve``
calls it once before listening (hypercorn offers no hook for the stream class).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.protocol.h11 as hypercorn_h11
from hypercorn.protocol.events import Data, StreamClosed
from hypercorn.protocol.ws_stream import ASGIWebsocketState, FrameTooLargeError, WSStream
from hypercorn.typing import ASGISendEvent
from hypercorn.utils import UnexpectedMessageError
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

#: The ASGI message type (and scope extension) for several text frames in one write.
SEND_BATCH = "openheim.websocket.send_batch"

Asgi = Callable[
    [dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class BoundedWSStream(WSStream):
    """``WSStream`` that stops buffering after 1009 and answers protocol errors with a close."""

    _refusing = False

    async def app_send(self, message: ASGISendEvent | None) -> None:
        if message is None or message["type"] != SEND_BATCH:
            await super().app_send(message)
            return
        if self.closed:
            return  # like hypercorn: the app may finish after the close
        if self.state != ASGIWebsocketState.CONNECTED:
            raise UnexpectedMessageError(self.state, message["type"])
        texts: list[str] = message["texts"]  # type: ignore[typeddict-item]
        try:
            data = b"".join(self.connection.send(TextMessage(data=text)) for text in texts)
        except LocalProtocolError:
            return  # closing: hypercorn drops a late send the same way
        await self.send(Data(stream_id=self.stream_id, data=data))

    async def _handle_events(self) -> None:
        for event in self.connection.events():
            if self._refusing:
                continue  # after 1009: whatever still arrives is dropped, not kept
            if isinstance(event, Message):
                try:
                    self.buffer.extend(event)
                except FrameTooLargeError:
                    self.buffer.clear()
                    self._refusing = True
                    close = CloseConnection(code=CloseReason.MESSAGE_TOO_BIG)
                    await self._send_wsproto_event(close)
                    await self.send(StreamClosed(stream_id=self.stream_id))
                    return
                if event.message_finished:
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state is ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                elif self.connection.state is ConnectionState.OPEN:
                    # Not the peer's close: wsproto found a broken frame (1007, 1002).
                    await self._send_wsproto_event(
                        CloseConnection(code=event.code, reason=event.reason)
                    )
                await self.send(StreamClosed(stream_id=self.stream_id))
                return


def install() -> None:
    """Make hypercorn's HTTP/1.1 upgrades use ``BoundedWSStream``."""
    hypercorn_h11.WSStream = BoundedWSStream  # type: ignore[misc]


def with_send_batch(app: Asgi) -> Asgi:
    """``app`` with ``SEND_BATCH`` announced in every WebSocket scope (served by
    ``BoundedWSStream``, so only together with ``install``)."""

    async def announced(
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] == "websocket":
            scope["extensions"] = {**(scope.get("extensions") or {}), SEND_BATCH: {}}
        await app(scope, receive, send)

    return announced
