"""The wait before a session's first model request for MCP servers still starting: real
servers as subprocesses, through ``openheim run``, ``openheim acp`` and the library."""

from __future__ import annotations

import json
import sys
from typing import Any

import trio

from openheim.agent.events import McpServerProgress, McpStartup
from openheim.config.model import McpServerConfig
from openheim.mcp.startup import wait_for_first_starts
from openheim.mcp.supervisor import open_mcp_supervisor
from openheim.testing import Reply
from tests.acp.client import open_agent, updates
from tests.e2e.conftest import Home
from tests.mcp.conftest import SERVER_APP, server_config

CRASH = "import sys; print('boom: no config', file=sys.stderr); sys.exit(3)"


def table(name: str, command: str, args: list[str], timeout: float) -> str:
    return (
        f"\n[mcp_servers.{name}]\ncommand = {json.dumps(command)}\n"
        f"args = {json.dumps(args)}\nstartup_timeout_secs = {timeout}\n"
    )


def add_servers(home: Home, *tables: str) -> None:
    config = home.path / "config.toml"
    config.write_text(config.read_text() + "".join(tables))


def offered(home: Home, request: int) -> set[str]:
    body = home.llm.requests[request].body
    return {tool["function"]["name"] for tool in body.get("tools", [])}


async def test_run_waits_so_the_first_request_offers_the_mcp_tools(home: Home) -> None:
    add_servers(home, table("my-tools", sys.executable, [str(SERVER_APP)], 20))
    home.llm.script.append(Reply.text("hello"))
    result = await home.run("run", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    assert {"my_tools__echo", "my_tools__add", "read_file"} <= offered(home, 0)
    assert "waiting for MCP servers: my-tools…" in result.stderr
    assert "MCP server my-tools: ready (" in result.stderr


async def test_run_waits_for_a_slow_server_and_reports_the_broken_ones(home: Home) -> None:
    add_servers(
        home,
        table("slow", sys.executable, [str(SERVER_APP), "--slow", "1.5"], 20),
        table("stuck", "sleep", ["300"], 1.5),
        table("broken", sys.executable, ["-c", CRASH], 20),
    )
    home.llm.script.append(Reply.text("answered"))
    started = trio.current_time()
    result = await home.run("run", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "answered\n"
    # Bounded by the stuck server's 1.5 s, not its 300 s of sleep.
    assert trio.current_time() - started < 20
    tools = offered(home, 0)
    assert "slow__echo" in tools
    assert not any(name.startswith(("stuck__", "broken__")) for name in tools)
    lines = result.stderr.splitlines()
    assert "waiting for MCP servers: slow, stuck, broken…" in lines
    assert any(line.startswith("MCP server slow: ready (") for line in lines)
    assert "MCP server stuck failed: did not start within 1.5 s; going on without it" in lines, (
        result.stderr
    )
    broken = [line for line in lines if line.startswith("MCP server broken failed: ")]
    assert len(broken) == 1 and broken[0].endswith("; going on without it"), result.stderr


def plans(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [u for u in updates(messages) if u["sessionUpdate"] == "plan"]


def prompt(session_id: str, text: str) -> dict[str, Any]:
    return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}


async def test_acp_shows_the_wait_as_a_plan_and_later_turns_do_not_wait(home: Home) -> None:
    add_servers(home, table("stuck", "sleep", ["300"], 1.5))
    mine = {"name": "mine", "command": sys.executable, "args": [str(SERVER_APP)], "env": []}
    home.llm.script.extend([Reply.text("first"), Reply.text("second")])
    async with open_agent(home) as agent:
        await agent.initialize()
        session = await agent.new_session(home.workdir, mcpServers=[mine])
        before, response = await agent.call("session/prompt", prompt(session, "one"))
        assert response["result"]["stopReason"] == "end_turn"
        assert "mine__echo" in offered(home, 0)
        shown = plans(before)
        assert shown[0]["entries"] == [
            {"content": "Start MCP server stuck", "priority": "medium", "status": "in_progress"},
            {"content": "Start MCP server mine", "priority": "medium", "status": "in_progress"},
        ]
        final = shown[-1]
        assert [entry["status"] for entry in final["entries"]] == ["completed", "completed"]
        assert final["entries"][0]["content"] == (
            "MCP server stuck failed: did not start within 1.5 s"
        )
        assert final["entries"][1]["content"].startswith("MCP server mine: ready (")
        state = final["_meta"]["openheim.dev"]["mcpStartup"]
        assert state[0] == {
            "name": "stuck",
            "state": "failed",
            "toolCount": 0,
            "error": "did not start within 1.5 s",
        }
        assert state[1]["state"] == "ready" and state[1]["toolCount"] > 0
        # The plan came before the answer.
        kinds = [u["sessionUpdate"] for u in updates(before)]
        assert kinds.index("agent_message_chunk") > max(
            i for i, kind in enumerate(kinds) if kind == "plan"
        )

        # The failed server restarts in the background; the next turn does not wait for it.
        started = trio.current_time()
        before, response = await agent.call("session/prompt", prompt(session, "two"))
        assert response["result"]["stopReason"] == "end_turn"
        assert plans(before) == []
        assert trio.current_time() - started < 1.5


async def test_the_library_hears_the_wait_as_events(tmp_path: Any) -> None:
    good = server_config("good")
    stuck = McpServerConfig(name="stuck", command="sleep", args=("300",), startup_timeout_secs=1)
    heard: list[McpStartup] = []

    async def emit(event: McpStartup) -> None:
        heard.append(event)

    async with open_mcp_supervisor([good, stuck], log_dir=tmp_path) as supervisor:
        with trio.fail_after(30):
            await wait_for_first_starts([supervisor], emit)
        assert heard[0] == McpStartup(
            (McpServerProgress("good", "starting"), McpServerProgress("stuck", "starting"))
        )
        assert {event.changed for event in heard[1:]} == {"good", "stuck"}
        final = {server.name: server for server in heard[-1].servers}
        assert final["good"].state == "ready" and final["good"].tool_count > 0
        assert final["stuck"] == McpServerProgress(
            "stuck", "failed", error="did not start within 1 s"
        )
        # Settled once: nothing is left to wait for, though "stuck" keeps restarting.
        assert supervisor.first_starts() == []
        heard.clear()
        await wait_for_first_starts([supervisor], emit)
        assert heard == []
