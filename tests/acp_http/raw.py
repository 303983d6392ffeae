"""A hand-written Streamable HTTP client for the protocol's edges: every request is plain httpx,
every SSE stream a channel of its lines, so tests see exactly what goes over the wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio

TIMEOUT = 15
SSE = {"Accept": "text/event-stream"}


def rpc(request_id: int | None, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:
        message["params"] = params
    return message


INITIALIZE = rpc(1, "initialize", {"protocolVersion": 1, "clientCapabilities": {}})


@attrs.define
class Lines:
    """An open SSE stream: its lines as they come; the channel ends with the stream."""

    status: int
    lines: trio.MemoryReceiveChannel[str]

    async def line(self) -> str | None:
        """The next line; None once the stream has ended."""
        with trio.fail_after(TIMEOUT):
            try:
                return await self.lines.receive()
            except trio.EndOfChannel:
                return None

    async def message(self) -> dict[str, Any]:
        """The next event's JSON-RPC message (keepalive comments and blank lines skipped)."""
        while True:
            line = await self.line()
            assert line is not None, "the stream ended"
            if line.startswith("data: "):
                message: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return message

    async def until(self, request_id: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The messages before the answer to ``request_id``, and that answer."""
        before = []
        while (message := await self.message()).get("id") != request_id or "method" in message:
            before.append(message)
        return before, message

    async def ended(self) -> bool:
        """Whether the stream ends with no more events."""
        while (line := await self.line()) is not None:
            if line.startswith("data: "):
                return False
        return True


@attrs.define
class RawClient:
    http: httpx.AsyncClient
    url: str
    nursery: trio.Nursery
    headers: dict[str, str] = attrs.field(factory=dict)
    connection_id: str = ""

    def ids(self, session_id: str | None = None) -> dict[str, str]:
        ids = {**self.headers, "Acp-Connection-Id": self.connection_id}
        if session_id is not None:
            ids["Acp-Session-Id"] = session_id
        return ids

    async def initialize(self) -> dict[str, Any]:
        response = await self.http.post(self.url, json=INITIALIZE, headers=self.headers)
        assert response.status_code == 200, response.text
        self.connection_id = response.headers["acp-connection-id"]
        body: dict[str, Any] = response.json()
        return body

    async def post(self, message: dict[str, Any], session_id: str | None = None) -> httpx.Response:
        return await self.http.post(self.url, json=message, headers=self.ids(session_id))

    async def send(self, message: dict[str, Any], session_id: str | None = None) -> None:
        response = await self.post(message, session_id)
        assert response.status_code == 202, response.text
        assert response.content == b""

    async def stream(self, session_id: str | None = None, **headers: str) -> Lines:
        """Open a GET stream, read in the background for the rest of the test."""
        send, receive = trio.open_memory_channel[str](10_000)
        status = await self.nursery.start(
            self._read, {**SSE, **self.ids(session_id), **headers}, send
        )
        return Lines(status, receive)

    async def _read(
        self,
        headers: dict[str, str],
        send: trio.MemorySendChannel[str],
        task_status: trio.TaskStatus[int],
    ) -> None:
        async with send, self.http.stream("GET", self.url, headers=headers) as response:
            task_status.started(response.status_code)
            try:
                async for line in response.aiter_lines():
                    await send.send(line)
            except httpx.HTTPError:
                pass


@asynccontextmanager
async def raw_client(
    url: str, headers: dict[str, str] | None = None, **client: Any
) -> AsyncIterator[RawClient]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT, read=None), **client) as http,
        trio.open_nursery() as nursery,
    ):
        yield RawClient(http, f"{url}/acp" if url else "", nursery, dict(headers or {}))
        nursery.cancel_scope.cancel()
