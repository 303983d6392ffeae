"""Drive ``openheim serve``'s ``/acp`` with the ACP Python SDK's remote clients.

Run as a process by the tests (the SDK is asyncio; the server and pytest are trio):
``python tests/acp_http/remote_driver.py SCENARIO TRANSPORT URL CWD [SESSION_ID]``, where
TRANSPORT is ``http`` (``create_http_stream``) or ``ws`` (``create_websocket_stream``) and URL the
server's ``http://host:port``. ``OPENHEIM_TEST_TOKEN`` in the environment is sent as a bearer
token. It prints one JSON object: the answers and every ``session/update``, as the SDK's strict
models parsed them (a malformed message fails the scenario). ``vanish`` prints the session id
on a line of its own mid-turn and then waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from acp import PROTOCOL_VERSION, connect_to_agent, text_block
from acp.http.client import create_http_stream
from acp.ws.client import create_websocket_stream

TIMEOUT = 30


class Recorder:
    """The client side: records updates and permission requests, allows each request."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.asked: list[dict[str, Any]] = []
        self._watchers: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Event]] = []

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        seen = update.model_dump(mode="json", by_alias=True, exclude_none=True)
        seen["_sessionId"] = session_id
        self.updates.append(seen)
        for test, event in self._watchers:
            if test(seen):
                event.set()

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any
    ) -> Any:
        from acp.schema import AllowedOutcome, RequestPermissionResponse

        self.asked.append({"toolCallId": tool_call.tool_call_id, "sessionId": session_id})
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id="allow_once")
        )

    async def seen(self, test: Callable[[dict[str, Any]], bool]) -> None:
        """Until an update that passes ``test`` has arrived."""
        if any(test(update) for update in self.updates):
            return
        event = asyncio.Event()
        self._watchers.append((test, event))
        await asyncio.wait_for(event.wait(), TIMEOUT)

    def take(self) -> list[dict[str, Any]]:
        taken, self.updates = self.updates, []
        return taken


def running(update: dict[str, Any]) -> bool:
    return update.get("sessionUpdate") == "tool_call_update" and update.get("status") == (
        "in_progress"
    )


def commands(update: dict[str, Any]) -> bool:
    return update.get("sessionUpdate") == "available_commands_update"


async def open_transport(transport: str, url: str) -> Any:
    token = os.environ.get("OPENHEIM_TEST_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    if transport == "http":
        return create_http_stream(f"{url}/acp", headers=headers)
    ws_url = "ws" + url.removeprefix("http")
    return await create_websocket_stream(f"{ws_url}/acp", headers=headers)


def dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)


async def turn(conn: Any, recorder: Recorder, cwd: str) -> dict[str, Any]:
    """A tool call the user allows, then a turn cancelled while its tool runs."""
    out: dict[str, Any] = {"initialize": dump(await conn.initialize(PROTOCOL_VERSION))}
    session_id = (await conn.new_session(cwd=cwd, mcp_servers=[])).session_id
    out["session_id"] = session_id
    await recorder.seen(commands)  # sent after new's answer, maybe on another stream
    recorder.take()
    answer = await conn.prompt(session_id=session_id, prompt=[text_block("run it")])
    out["prompt"] = dump(answer)
    out["updates"] = recorder.take()
    napping = asyncio.ensure_future(conn.prompt(session_id=session_id, prompt=[text_block("nap")]))
    await recorder.seen(running)
    await conn.cancel(session_id=session_id)
    out["cancelled"] = dump(await asyncio.wait_for(napping, TIMEOUT))
    out["cancel_updates"] = recorder.take()
    out["asked"] = recorder.asked
    return out


async def load(conn: Any, recorder: Recorder, cwd: str, session_id: str) -> dict[str, Any]:
    """Load a session another connection made, then go on with it."""
    await conn.initialize(PROTOCOL_VERSION)
    out: dict[str, Any] = {"load": dump(await conn.load_session(cwd=cwd, session_id=session_id))}
    out["replay"] = [u for u in recorder.take() if not commands(u)]
    answer = await conn.prompt(session_id=session_id, prompt=[text_block("and now?")])
    out["prompt"] = dump(answer)
    out["updates"] = recorder.take()
    return out


async def sessions(conn: Any, recorder: Recorder, cwd: str) -> dict[str, Any]:
    await conn.initialize(PROTOCOL_VERSION)
    listed = await conn.list_sessions()
    return {"sessions": [s.session_id for s in listed.sessions]}


async def vanish(conn: Any, recorder: Recorder, cwd: str) -> dict[str, Any]:
    """Start a turn whose tool runs long, say the session id, and wait to be killed."""
    await conn.initialize(PROTOCOL_VERSION)
    session_id = (await conn.new_session(cwd=cwd, mcp_servers=[])).session_id
    napping = asyncio.ensure_future(conn.prompt(session_id=session_id, prompt=[text_block("nap")]))
    await recorder.seen(running)
    print(session_id, flush=True)
    await asyncio.sleep(3600)
    return {"never": dump(await napping)}


async def main(scenario: str, transport: str, url: str, cwd: str, *rest: str) -> dict[str, Any]:
    recorder = Recorder()
    stream = await open_transport(transport, url)
    conn = connect_to_agent(recorder, stream)  # type: ignore[arg-type]
    try:
        match scenario:
            case "turn":
                return await turn(conn, recorder, cwd)
            case "load":
                return await load(conn, recorder, cwd, rest[0])
            case "sessions":
                return await sessions(conn, recorder, cwd)
            case "vanish":
                return await vanish(conn, recorder, cwd)
        raise SystemExit(f"unknown scenario {scenario}")
    finally:
        await conn.close()


if __name__ == "__main__":
    result = asyncio.run(main(*sys.argv[1:]))
    print(json.dumps(result))
