"""Cheaper reads for provider responses over plain TCP: one wait per chunk, not three layers.

httpcore's trio stream wraps every read in ``fail_after`` (a generator context manager and a
fresh cancel scope) and ``map_exceptions`` (another generator context manager), then goes
through trio's socket wrappers. A streamed reply is one read per chunk, so that machinery is
a large share of what relaying a chunk costs (bench/RESULTS.md, "Relay speed": 18% less server
CPU per chunk without it). ``LeanStream`` reads the socket directly and waits for it only when
it has nothing, in a plain cancel scope with the same read timeout. TLS streams, writes and
everything else go to httpcore's stream unchanged.

httpx offers no way to choose httpcore's network backend, so ``use_lean_reads`` sets it on
the client's connection pool. It checks what it finds and leaves the client as it was when
httpx or httpcore change shape (then reads simply cost what they did).
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import trio

SocketOption = tuple[int, int, int | bytes] | tuple[int, int, None, int]


class LeanStream(httpcore.AsyncNetworkStream):
    """httpcore's trio stream, with reads that skip its per-read machinery on plain TCP."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, fd: int | None) -> None:
        self._inner = inner
        #: The socket's descriptor while the stream is plain TCP; None once it is TLS.
        self._fd = fd

    # The ``timeout`` parameters are httpcore's interface (ASYNC109 asks for scopes instead).
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        if self._fd is None:
            return await self._inner.read(max_bytes, timeout)
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        waited = False
        while True:
            try:
                data = os.read(self._fd, max_bytes)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc
            else:
                if not waited:  # a read is a checkpoint, or a fast peer starves the rest
                    await trio.lowlevel.checkpoint()
                return data
            with trio.CancelScope(deadline=deadline) as waiting:
                await trio.lowlevel.wait_readable(self._fd)
            if waiting.cancelled_caught:
                raise httpcore.ReadTimeout(f"no data for {timeout} s")
            waited = True

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class LeanTrioBackend(httpcore.TrioBackend):
    """httpcore's trio backend, whose TCP streams read through ``LeanStream``."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        inner = await super().connect_tcp(host, port, timeout, local_address, socket_options)
        sock = inner.get_extra_info("socket")
        return LeanStream(inner, sock.fileno() if sock is not None else None)


def use_lean_reads(client: httpx.AsyncClient) -> bool:
    """Give ``client``'s direct connections lean reads; whether it could (proxied ones, and
    any httpx whose internals differ, keep httpcore's own)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if not isinstance(pool, httpcore.AsyncConnectionPool):
        return False
    if not hasattr(pool, "_network_backend"):
        return False
    pool._network_backend = LeanTrioBackend()
    return True
