"""A WebSocket client of ``openheim serve`` (in-process, real sockets on 127.0.0.1) vanishes
mid-prompt: its TCP connection is reset while the answer streams, with no close frame.

docs/server.md: sessions outlive their socket by ``disconnect_grace_secs``; with
``on_disconnect = "keep"`` (the default) the running turn goes on to its end, with ``"cancel"``
it is cancelled; either way it is saved, and a new connection can ``session/load`` and go on.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from openheim.server.app import RunningServer
from openheim.testing import RecordedRequest, Reply, Response, Script
from openheim.testing.script import split_evenly
from tests.e2e.conftest import Home, home
from tests.faults.conftest import Summary, assistant, summary, user
from tests.server.client import (
    GREETING,
    RawWsClient,
    connect,
    kinds,
    prompt_params,
    running_server,
    updates,
)
from tests.waiting import wait_until

__all__ = ["home"]

STORY = "Once upon a time there was a server that kept every word it was told."
PIECES = 10
REPLIES = {
    "hello": Reply.text("Hi."),
    "tell me a story": Reply.text(STORY, pieces=PIECES, chunk_delay=0.1),
    "i am another client": Reply.text("Served."),
    "go on": Reply.text("Recovered."),
}
TIMEOUT = 15


class ByPrompt(Script):
    """Answers by the last user message, so concurrent sessions get their own replies."""

    def respond_to(self, request: RecordedRequest) -> Response | None:
        return REPLIES[request.body["messages"][-1]["content"]]


class VanishingClient:
    """A /ws client on a raw socket, so it can disappear the way a crashed browser tab or a
    lost network does: a TCP reset, no WebSocket close frame."""

    def __init__(self, raw: RawWsClient) -> None:
        self.raw = raw
        self._next_id = 0

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[VanishingClient]:
        async with RawWsClient.open(url, "/ws") as raw:
            client = cls(raw)
            assert json.loads(await client._receive()) == GREETING
            yield client

    async def _receive(self) -> str:
        with trio.fail_after(TIMEOUT):
            text = await self.raw.receive_text()
        assert text is not None, "the server closed the connection"
        return text

    async def request(self, method: str, params: dict[str, Any]) -> int:
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        await self.raw.send_text(json.dumps({"channel": "agent", "data": message}))
        return self._next_id

    async def receive_agent(self) -> dict[str, Any]:
        while True:
            frame = json.loads(await self._receive())
            if frame["channel"] == "agent":
                return frame["data"]

    async def result(self, method: str, params: dict[str, Any]) -> Any:
        request_id = await self.request(method, params)
        while (message := await self.receive_agent()).get("id") != request_id:
            pass
        assert "result" in message, message
        return message["result"]

    async def vanish(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST and drops anything unsent."""
        self.raw.stream.socket.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        await self.raw.stream.aclose()


def stored(home: Home, session_id: str) -> list[Summary]:
    document = json.loads((home.path / "history" / f"{session_id}.json").read_text())
    return [summary(message) for message in document["messages"]]


async def wait_idle(server: RunningServer, session_id: str) -> None:
    """Until the session's turn has ended (it stays live: the grace is 300 s)."""
    (tenant,) = server.state.tenants.live()

    def idle() -> bool:
        session = tenant.registry.get(session_id)
        assert session is not None, "the session was closed before its grace ended"
        return not session.busy

    # ``busy`` is a flag with no event: the turn may have ended before anyone could subscribe.
    await wait_until(idle, seconds=TIMEOUT, what=f"session {session_id} to go idle")


@pytest.mark.parametrize("policy", ["keep", "cancel"])
async def test_ws_client_vanishes_mid_prompt(home: Home, policy: str) -> None:
    home.llm.app.script = ByPrompt()
    async with running_server(home, f'on_disconnect = "{policy}"') as server:
        async with VanishingClient.open(server.ws_url) as gone, connect(server.ws_url) as other:
            await gone.result("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
            params = {"cwd": str(home.workdir), "mcpServers": []}
            session_id = (await gone.result("session/new", params))["sessionId"]
            assert await gone.result("session/prompt", prompt_params(session_id, "hello")) == {
                "stopReason": "end_turn"
            }
            await gone.request("session/prompt", prompt_params(session_id, "tell me a story"))
            while (await gone.receive_agent()).get("params", {}).get("update", {}).get(
                "sessionUpdate"
            ) != "agent_message_chunk":
                pass
            await gone.vanish()

            # Another client of the same tenant is served as before.
            await other.initialize()
            other_id = await other.new_session(home.workdir)
            before, response = await other.prompt(other_id, "i am another client")
            assert response["result"] == {"stopReason": "end_turn"}
            assert "".join(u["content"]["text"] for u in updates(before)) == "Served."

        await wait_idle(server, session_id)
        turn = stored(home, session_id)
        assert turn[:3] == [user("hello"), assistant("Hi."), user("tell me a story")]
        (saved,) = turn[3:]
        if policy == "keep":  # the turn ran to its end with nobody watching
            assert saved == assistant(STORY)
        else:  # cancelled when the socket dropped: what had streamed is kept
            role, text, _ = saved
            assert role == "assistant" and STORY.startswith(text)
            assert split_evenly(STORY, PIECES)[0] in text and text != STORY

        async with connect(server.ws_url) as again:
            await again.initialize()
            replay, response = await again.call("session/load", {"sessionId": session_id, **params})
            assert "result" in response
            assert kinds(replay) == [
                "user_message_chunk",
                "agent_message_chunk",
                "user_message_chunk",
                "agent_message_chunk",
            ]
            assert updates(replay)[3]["content"]["text"] == saved[1]
            before, response = await again.prompt(session_id, "go on")
            assert response["result"] == {"stopReason": "end_turn"}
            assert "".join(u["content"]["text"] for u in updates(before)) == "Recovered."
    last = home.llm.requests[-1].body["messages"]
    assert [summary(m) for m in last if m["role"] != "system"] == [*turn, user("go on")]
    assert stored(home, session_id) == [*turn, user("go on"), assistant("Recovered.")]
