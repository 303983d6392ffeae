"""A minimal ACP client for tests: raw JSON lines over a real ``openheim acp`` process.

Written against the wire, not the agent's own classes, so the tests check what a real client
would see. Every line the agent writes to stdout must be a JSON-RPC 2.0 message; anything else
fails the test.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from tests.e2e.conftest import Home

#: Answers an agent→client request: a result, or an ``{"error": ...}`` marker dict.
Responder = Callable[[dict[str, Any]], Any]


class AcpAgent:
    def __init__(self, process: trio.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self._buffer = bytearray()
        self._next_id = 0
        #: Every message read so far, in order.
        self.seen: list[dict[str, Any]] = []

    # --- sending ------------------------------------------------------------------------------

    async def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(data)

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_raw(json.dumps(message).encode() + b"\n")

    async def request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return self._next_id

    async def notify(self, method: str, params: Any) -> None:
        await self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def respond(self, request_id: Any, result: Any) -> None:
        await self.send({"jsonrpc": "2.0", "id": request_id, "result": result})

    async def close_stdin(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    # --- receiving ----------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        """The next message; asserts the line is JSON-RPC."""
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            data = await self.process.stdout.receive_some(65536)
            if not data:
                raise EOFError(f"agent closed stdout; stderr:\n{self.stderr()}")
            self._buffer += data
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        try:
            message = json.loads(line)
        except ValueError:
            raise AssertionError(f"non-JSON line on stdout: {line!r}") from None
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", line
        self.seen.append(message)
        return message

    async def until_response(
        self, request_id: int, respond: Responder | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Messages before the response to ``request_id``, and that response.

        Requests from the agent are answered by ``respond`` (and still listed); without it a
        request fails the test.
        """
        before: list[dict[str, Any]] = []
        while True:
            message = await self.receive()
            if "method" not in message and message.get("id") == request_id:
                return before, message
            before.append(message)
            if "method" in message and "id" in message:
                assert respond is not None, f"unexpected request from the agent: {message}"
                answer = respond(message)
                if isinstance(answer, dict) and "error" in answer and len(answer) == 1:
                    await self.send(
                        {"jsonrpc": "2.0", "id": message["id"], "error": answer["error"]}
                    )
                else:
                    await self.respond(message["id"], answer)

    async def call(
        self, method: str, params: Any = None, respond: Responder | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return await self.until_response(await self.request(method, params), respond)

    async def result(self, method: str, params: Any = None) -> Any:
        _, response = await self.call(method, params)
        assert "result" in response, response
        return response["result"]

    async def initialize(self, **capabilities: Any) -> dict[str, Any]:
        return await self.result(
            "initialize",
            {
                "protocolVersion": 1,
                "clientCapabilities": capabilities,
                "clientInfo": {"name": "test", "version": "0"},
            },
        )

    async def new_session(self, cwd: Path, **extra: Any) -> str:
        result = await self.result("session/new", {"cwd": str(cwd), "mcpServers": [], **extra})
        return result["sessionId"]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


#: Updates about the session itself (title, context usage, options), not about a turn's work.
SESSION_STATE = frozenset(
    {
        "session_info_update",
        "usage_update",
        "config_option_update",
        "current_mode_update",
        "available_commands_update",
    }
)


def is_turn_update(message: dict[str, Any]) -> bool:
    return (
        message.get("method") == "session/update"
        and message["params"]["update"]["sessionUpdate"] not in SESSION_STATE
    )


def updates(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``update`` objects of a turn's ``session/update`` notifications among ``messages``
    (session-state updates left out: ``state_updates`` has them)."""
    return [m["params"]["update"] for m in messages if is_turn_update(m)]


def state_updates(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The session-state updates among ``messages`` (title, usage, options), in order."""
    return [
        m["params"]["update"]
        for m in messages
        if m.get("method") == "session/update" and not is_turn_update(m)
    ]


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    """A compact picture: update kinds (with status) and agent request methods, in order."""
    out = []
    for message in messages:
        if message.get("method") == "session/update":
            if not is_turn_update(message):
                continue
            update = message["params"]["update"]
            status = update.get("status")
            kind = update["sessionUpdate"]
            out.append(f"{kind}:{status}" if status else kind)
        elif "method" in message:
            out.append(message["method"])
    return out


def chunk_text(messages: list[dict[str, Any]], kind: str = "agent_message_chunk") -> str:
    return "".join(u["content"]["text"] for u in updates(messages) if u["sessionUpdate"] == kind)


@asynccontextmanager
async def open_agent(
    home: Home, *, env: dict[str, str] | None = None, name: str = "agent"
) -> AsyncIterator[AcpAgent]:
    """``openheim acp`` in ``home.workdir``; on exit, stdin is closed and exit 0 is expected."""
    stderr_path = home.path / f"{name}.stderr"
    with stderr_path.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            home.command("acp"),
            cwd=home.workdir,
            env=env or home.env(OPENHEIM_LOG="info"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    agent = AcpAgent(process, stderr_path)
    try:
        yield agent
        if process.returncode is None:
            await agent.close_stdin()
        with trio.fail_after(5):
            # Whatever is still on stdout must be JSON-RPC too.
            while True:
                try:
                    await agent.receive()
                except EOFError:
                    break
            code = await process.wait()
        assert code == 0, agent.stderr()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
