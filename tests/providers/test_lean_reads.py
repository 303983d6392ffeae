"""Provider clients read plain TCP through ``LeanStream``: same bytes, same read timeout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
import trio

from openheim.providers.lean_reads import LeanTrioBackend, use_lean_reads

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve_once(
    nursery: trio.Nursery, reply: Callable[[trio.SocketStream], Awaitable[None]]
) -> str:
    """A one-connection HTTP server on 127.0.0.1 whose response is ``reply``'s."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)  # the request (small, in one piece)
        await reply(stream)

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


async def test_a_paced_stream_arrives_whole_through_the_lean_backend() -> None:
    pieces = [b"data: %d\n\n" % i for i in range(20)]

    async def paced(stream: trio.SocketStream) -> None:
        await stream.send_all(HEAD)
        for piece in pieces:
            await stream.send_all(chunk(piece))
            await trio.sleep(0.005)
        await stream.send_all(b"0\r\n\r\n")

    async with trio.open_nursery() as nursery:
        url = await serve_once(nursery, paced)
        async with httpx.AsyncClient() as client:
            assert use_lean_reads(client)
            assert isinstance(client._transport._pool._network_backend, LeanTrioBackend)  # type: ignore[attr-defined]
            async with client.stream("GET", url) as response:
                body = b"".join([part async for part in response.aiter_raw()])
        nursery.cancel_scope.cancel()
    assert body == b"".join(pieces)


async def test_a_stalled_stream_still_times_out() -> None:
    async def stall(stream: trio.SocketStream) -> None:
        await stream.send_all(HEAD + chunk(b"data: 1\n\n"))
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        url = await serve_once(nursery, stall)
        async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.2)) as client:
            use_lean_reads(client)
            started = trio.current_time()
            with pytest.raises(httpx.ReadTimeout):
                async with client.stream("GET", url) as response:
                    async for _ in response.aiter_raw():
                        pass
            assert trio.current_time() - started < 3
        nursery.cancel_scope.cancel()


async def test_a_client_of_another_shape_is_left_alone() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as c:
        assert not use_lean_reads(c)
