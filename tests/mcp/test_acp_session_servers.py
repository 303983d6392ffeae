"""MCP servers an ACP client passes in ``session/new``: that session's only, stopped with it."""

from __future__ import annotations

import sys
from typing import Any

import trio

from openheim.testing import Reply
from tests.acp.client import open_agent
from tests.e2e.conftest import Home, request_messages
from tests.mcp.conftest import SERVER_APP, HttpServer
from tests.mcp.test_run_e2e import alive


def prompt(session_id: str, text: str) -> dict[str, Any]:
    return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}


def tool_results(home: Home, request: int) -> dict[str, str]:
    messages = request_messages(home.llm, request)
    return {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}


def offered_tools(home: Home, request: int) -> set[str]:
    body = home.llm.requests[request].body
    return {tool["function"]["name"] for tool in body.get("tools", [])}


async def test_a_session_server_is_used_by_its_session_only_and_stops_with_it(
    home: Home, http_server: HttpServer
) -> None:
    mine = {"name": "mine", "command": sys.executable, "args": [str(SERVER_APP)], "env": []}
    web = {"type": "http", "name": "web", "url": http_server.url, "headers": []}
    home.llm.script.extend(
        [
            Reply.tool_calls([("a_pid", "mine__pid", {}), ("a_add", "web__add", {"a": 1, "b": 2})]),
            Reply.text("A done"),
            Reply.tool_call("mine__pid", {}, id="b_pid"),
            Reply.text("B done"),
            Reply.text("A again"),
        ]
    )
    async with open_agent(home) as agent:
        await agent.initialize()
        session_a = await agent.new_session(home.workdir, mcpServers=[mine, web])
        session_b = await agent.new_session(home.workdir)

        # The first prompt may come before the servers are up: the calls wait for them.
        assert (await agent.result("session/prompt", prompt(session_a, "use mine")))[
            "stopReason"
        ] == "end_turn"
        results = tool_results(home, 1)
        server_pid = int(results["a_pid"])
        assert results["a_add"] == "3"

        assert (await agent.result("session/prompt", prompt(session_b, "try mine")))[
            "stopReason"
        ] == "end_turn"
        assert "unknown tool 'mine__pid'" in tool_results(home, 3)["b_pid"]
        assert not {name for name in offered_tools(home, 2) if "__" in name}

        await agent.result("session/prompt", prompt(session_a, "again"))
        assert {"mine__echo", "web__echo"} <= offered_tools(home, 4)

        assert await agent.result("session/close", {"sessionId": session_a}) == {}
        with trio.fail_after(5):
            while alive(server_pid):  # noqa: ASYNC110 (polling another process)
                await trio.sleep(0.05)
        _, closed = await agent.call("session/prompt", prompt(session_a, "after close"))
        assert closed["error"]["code"] == -32002
