"""MCP through ACP sessions: a crashing config server, and servers a client passes in
``session/new`` (that session's only, stopped with it)."""

from __future__ import annotations

import sys
from typing import Any

import trio

from openheim.testing import Reply
from tests.acp.client import open_agent
from tests.e2e.conftest import Home, request_messages
from tests.mcp.conftest import SERVER_APP, HttpServer
from tests.mcp.test_run_e2e import alive, mcp_config_table
from tests.waiting import wait_until


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
        await wait_until(lambda: not alive(server_pid), what="the session's MCP server to end")
        _, closed = await agent.call("session/prompt", prompt(session_a, "after close"))
        assert closed["error"]["code"] == -32002


async def test_a_crash_mid_call_fails_the_call_and_the_next_turn_has_the_server_back(
    home: Home,
) -> None:
    config = home.path / "config.toml"
    config.write_text(config.read_text() + mcp_config_table("tools"))
    home.llm.script.extend(
        [
            Reply.tool_call("tools__pid", {}, id="pid_1"),
            Reply.text("got the pid"),
            Reply.tool_call("tools__crash", {}, id="crash"),
            Reply.text("it crashed"),
            Reply.tool_calls(
                [("echo", "tools__echo", {"text": "back"}), ("pid_2", "tools__pid", {})]
            ),
            Reply.text("it is back"),
        ]
    )
    async with open_agent(home) as agent:
        await agent.initialize()
        session = await agent.new_session(home.workdir)
        await agent.result("session/prompt", prompt(session, "pid"))
        first_pid = int(tool_results(home, 1)["pid_1"])

        start = trio.current_time()
        crashed = await agent.result("session/prompt", prompt(session, "crash it"))
        assert crashed["stopReason"] == "end_turn"
        assert trio.current_time() - start < 5  # the call failed at once, not at the timeout
        error = tool_results(home, 3)["crash"]
        assert error == "MCP server 'tools' exited during the call"

        again = await agent.result("session/prompt", prompt(session, "again"))
        assert again["stopReason"] == "end_turn"
        results = tool_results(home, 5)
        assert results["echo"] == "echo: back"
        assert int(results["pid_2"]) != first_pid
    assert not alive(int(results["pid_2"]))
