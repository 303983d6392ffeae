"""Test clients for the server: trio-websocket for /ws and /acp, a server runner, raw sockets.

Written against the wire (JSON frames), not the server's classes, so tests see what a browser
or an ACP client would.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
import wsproto
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from openheim.config.load import load_config
from openheim.config.paths import Paths
from openheim.server.app import RunningServer, open_server
from tests.acp.client import is_turn_update
from tests.e2e.conftest import Home
from tests.waiting import wait_until

GREETING = {"channel": "fs", "data": {"type": "connected", "message": "Connected to Openheim"}}
TIMEOUT = 15


def prompt_params(session_id: str, text: str) -> dict[str, Any]:
    return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}


def updates(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A turn's updates among ``messages`` (session-state updates left out)."""
    return [m["params"]["update"] for m in messages if is_turn_update(m)]


def kinds(messages: Sequence[dict[str, Any]]) -> list[str]:
    out = []
    for update in updates(messages):
        status = update.get("status")
        out.append(f"{update['sessionUpdate']}:{status}" if status else update["sessionUpdate"])
    return out


def write_server_config(home: Home, server_toml: str = "", extra: str = "") -> None:
    """The e2e config plus ``extra`` (more of ``[providers.fake]``, then tables) and
    ``[server]``."""
    home.write_config(extra_provider=f"{extra}\n[server]\n{server_toml}\n")


@asynccontextmanager
async def running_server(
    home: Home, server_toml: str = "", extra: str = "", env: dict[str, str] | None = None
) -> AsyncIterator[RunningServer]:
    """The server in this trio loop on 127.0.0.1:<free port>, workspace = ``home.workdir``."""
    write_server_config(home, server_toml, extra)
    config = load_config(home.path / "config.toml")
    async with open_server(
        config, Paths(home.path), env=env or home.env(), port=0, workspace_root=home.workdir
    ) as server:
        yield server


class WsClient:
    """One WebSocket; ``multiplexed`` = /ws envelopes, else bare ACP frames (/acp)."""

    def __init__(self, ws: WebSocketConnection, *, multiplexed: bool) -> None:
        self.ws = ws
        self.multiplexed = multiplexed
        self._next_id = 0
        #: fs-channel frames seen while waiting for agent messages.
        self.fs: list[dict[str, Any]] = []

    async def send_raw(self, text: str) -> None:
        await self.ws.send_message(text)

    async def send_agent(self, message: dict[str, Any]) -> None:
        if self.multiplexed:
            await self.send_raw(json.dumps({"channel": "agent", "data": message}))
        else:
            await self.send_raw(json.dumps(message))

    async def send_fs(self, data: dict[str, Any]) -> None:
        await self.send_raw(json.dumps({"channel": "fs", "data": data}))

    async def request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send_agent(message)
        return self._next_id

    async def notify(self, method: str, params: Any) -> None:
        await self.send_agent({"jsonrpc": "2.0", "method": method, "params": params})

    async def receive(self) -> tuple[str, Any]:
        """The next frame as (channel, data); /acp frames come as ("agent", message)."""
        with trio.fail_after(TIMEOUT):
            frame = json.loads(await self.ws.get_message())
        if not self.multiplexed:
            return "agent", frame
        assert set(frame) == {"channel", "data"}, frame
        return frame["channel"], frame["data"]

    async def receive_fs(self) -> dict[str, Any]:
        if self.fs:
            return self.fs.pop(0)
        channel, data = await self.receive()
        assert channel == "fs", data
        return data

    async def receive_agent(self) -> dict[str, Any]:
        while True:
            channel, data = await self.receive()
            if channel == "agent":
                assert data.get("jsonrpc") == "2.0", data
                return data
            self.fs.append(data)

    async def until_response(self, request_id: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Agent messages before the response to ``request_id``, and that response."""
        before = []
        while True:
            message = await self.receive_agent()
            if message.get("id") == request_id and "method" not in message:
                return before, message
            before.append(message)

    async def call(
        self, method: str, params: Any = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return await self.until_response(await self.request(method, params))

    async def result(self, method: str, params: Any = None) -> Any:
        _, response = await self.call(method, params)
        assert "result" in response, response
        return response["result"]

    async def initialize(self) -> dict[str, Any]:
        return await self.result("initialize", {"protocolVersion": 1, "clientCapabilities": {}})

    async def new_session(self, cwd: Path) -> str:
        result = await self.result("session/new", {"cwd": str(cwd), "mcpServers": []})
        return result["sessionId"]

    async def prompt(
        self, session_id: str, text: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return await self.call("session/prompt", prompt_params(session_id, text))


def _token_headers(token: str | None, headers: Sequence[tuple[bytes, bytes]]) -> list:
    extra = list(headers)
    if token is not None:
        extra.append((b"authorization", f"Bearer {token}".encode()))
    return extra


@asynccontextmanager
async def connect(
    url: str,
    path: str = "/ws",
    *,
    token: str | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
    greet: bool = True,
) -> AsyncIterator[WsClient]:
    """A client on ``url`` (ws://host:port); /ws clients have read the greeting already."""
    opened: WebSocketConnection | None = None
    try:
        async with open_websocket_url(
            f"{url}{path}",
            extra_headers=_token_headers(token, headers),
            message_queue_size=64,
            max_message_size=16 * 1024 * 1024,
            disconnect_timeout=2,
        ) as ws:
            opened = ws
            client = WsClient(ws, multiplexed=path == "/ws")
            if path == "/ws" and greet:
                with trio.fail_after(TIMEOUT):
                    assert json.loads(await ws.get_message()) == GREETING
            yield client
    finally:
        # trio-websocket 0.12 never closes its socket when the server closed first.
        if opened is not None:
            await opened._stream.aclose()


# --- the server as a process ---------------------------------------------------------------


@attrs.define
class ServerProcess:
    process: trio.Process
    stderr_path: Path
    url: str = ""

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        assert match is not None
        return int(match.group(1))

    async def wait_for_log(self, text: str, seconds: float = TIMEOUT) -> None:
        """Until the server logs ``text`` (a file another process writes: only polling sees it)."""
        await wait_until(lambda: text in self.stderr(), seconds=seconds, what=repr(text))

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)


@asynccontextmanager
async def server_process(
    home: Home, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[ServerProcess]:
    """``openheim serve --port 0 ARGS`` with logs in a file; yields once it is listening."""
    stderr_path = home.path / f"serve-{len(list(home.path.glob('serve-*')))}.log"
    with stderr_path.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "openheim", "serve", "--port", "0", *args],
            cwd=home.workdir,
            env=env or home.env(OPENHEIM_LOG="info"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = ServerProcess(process, stderr_path)
    listening = re.compile(r'openheim serving on ([^\s"]+)')

    def started() -> bool:
        assert process.poll() is None, server.stderr()
        return listening.search(server.stderr()) is not None

    try:
        await wait_until(started, seconds=TIMEOUT, what="the server to listen")
        match = listening.search(server.stderr())
        assert match is not None
        server.url = match.group(1)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


# --- a client that reads only when told --------------------------------------------------------


class RawWsClient:
    """A WebSocket client on a socket with a tiny receive buffer that reads only when asked.

    trio-websocket keeps reading into its queue in the background, and the kernel would
    autotune a normal socket's buffer to megabytes; this one really stops reading.
    """

    def __init__(self, stream: trio.SocketStream, connection: wsproto.WSConnection) -> None:
        self.stream = stream
        self.connection = connection
        self.accepted = False
        self.ended = False
        self.close_code: int | None = None
        self._parts: list[str] = []
        self._ready: deque[str] = deque()

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, path: str) -> AsyncIterator[RawWsClient]:
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect((host, int(port)))
        stream = trio.SocketStream(sock)
        connection = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        async with stream:
            await stream.send_all(connection.send(Request(host=f"{host}:{port}", target=path)))
            client = cls(stream, connection)
            with trio.fail_after(TIMEOUT):
                while not client.accepted:
                    assert await client._read(), "the server closed during the handshake"
            yield client

    async def _read(self) -> bool:
        """Read once from the socket; False at the end of the connection."""
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            data = b""
        if not data:
            self.ended = True
            return False
        self.connection.receive_data(data)
        for event in self.connection.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self._ready.append("".join(self._parts))
                    self._parts.clear()
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
        return True

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.connection.send(TextMessage(data=text)))

    async def receive_text(self) -> str | None:
        """The next text message, or None when the connection has ended."""
        while not self._ready:
            if self.ended or not await self._read():
                return None
        return self._ready.popleft()
