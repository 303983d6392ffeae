"""A TCP proxy on 127.0.0.1 in front of the fake LLM that resets connections for real.

The fake LLM can end a response early, but only with an orderly close. A reset (RST, what a
crashed peer, a load balancer or a NAT timeout produce) reaches the client as a different
error, so the fault matrix runs both. The proxy forwards bytes untouched until a request
containing ``marker`` passes; that connection is then reset before the response, or after
``events`` server-sent events of it have been forwarded and the test says its client has read
them (``ResetPlan.forwarded_read``): an RST makes the client's kernel drop what it has not read.
"""

from __future__ import annotations

import socket
import struct
from contextlib import suppress
from typing import Literal

import attrs
import trio

When = Literal["before-response", "mid-stream"]


@attrs.define
class ResetPlan:
    marker: bytes
    when: When
    #: With ``mid-stream``: how many ``data:`` events get through first.
    events: int = 3
    #: How many matching requests are reset; later ones pass.
    times: int = 1
    #: With ``mid-stream``: set by the test once its client has read the forwarded events; the
    #: reset waits for it, or it would throw away bytes still in the client's socket buffer.
    forwarded_read: trio.Event = attrs.field(factory=trio.Event)


class ResettingProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.plan: ResetPlan | None = None
        self.port = 0
        #: Connections reset so far.
        self.resets = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listener.socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, [listener])

    def _take(self, data: bytes) -> When | None:
        """Whether this request (its bytes so far) is one the plan resets."""
        plan = self.plan
        if plan is None or plan.times == 0 or plan.marker not in data:
            return None
        plan.times -= 1
        return plan.when

    async def _handle(self, client: trio.SocketStream) -> None:
        reset = False
        try:
            async with await trio.open_tcp_stream(*self.upstream) as upstream:
                reset = await self._forward(client, upstream)
        finally:
            if reset:
                self.resets += 1
                linger = struct.pack("ii", 1, 0)  # close now and send RST, not FIN
                client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            await client.aclose()

    async def _forward(self, client: trio.SocketStream, upstream: trio.SocketStream) -> bool:
        """Pass bytes both ways until either side closes; True when the plan says reset."""
        reset = False
        armed = trio.Event()  # a mid-stream reset is due on this connection's next response

        async def up(done: trio.CancelScope) -> None:
            nonlocal reset
            seen = b""
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while data := await client.receive_some():
                    seen = seen[-4096:] + data
                    when = self._take(seen)
                    if when == "before-response":
                        reset = True
                        break
                    if when == "mid-stream":
                        seen = b""
                        armed.set()
                    await upstream.send_all(data)
            done.cancel()

        async def down(done: trio.CancelScope) -> None:
            nonlocal reset
            events = 0
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while data := await upstream.receive_some():
                    await client.send_all(data)
                    if armed.is_set() and self.plan is not None:
                        events += data.count(b"data: ")
                        if events >= self.plan.events:
                            await self.plan.forwarded_read.wait()
                            reset = True
                            break
            done.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(up, nursery.cancel_scope)
            nursery.start_soon(down, nursery.cancel_scope)
        return reset
