"""The MCP actor against a real server process: calls, errors, timeouts, crashes, restarts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from openheim.config.model import McpServerConfig
from openheim.mcp.actor import ServerState
from openheim.mcp.supervisor import McpSupervisor, open_mcp_supervisor
from openheim.tools.base import ToolContext, ToolRegistry
from tests.mcp.conftest import HttpServer, server_config, wait_for
from tests.waiting import wait_until

CONTEXT = ToolContext(cwd=os.getcwd())  # type: ignore[arg-type]


@pytest.fixture
async def supervisor() -> AsyncIterator[McpSupervisor]:
    config = server_config("my-server", tool_timeout_secs=0.5)
    async with open_mcp_supervisor([config], backoff_initial=0.05, backoff_max=0.2) as mcp:
        with trio.fail_after(20):
            await wait_for(mcp.actors["my-server"], ServerState.CONNECTED)
        yield mcp


async def call(mcp: McpSupervisor, tool_name: str, /, **arguments: object) -> tuple[str, bool]:
    tool = mcp.find(tool_name)
    assert tool is not None, tool_name
    result = await tool.call(dict(arguments), CONTEXT)
    return result.content, result.is_error


async def test_lists_tools_with_sanitised_names_and_schemas(supervisor: McpSupervisor) -> None:
    status = supervisor.statuses()["my-server"]
    assert status.state is ServerState.CONNECTED and status.tool_count == 9
    definitions = {t.definition.name: t.definition for t in supervisor.tools()}
    assert set(definitions) >= {"my_server__echo", "my_server__add", "my_server__crash"}
    assert definitions["my_server__add"].parameters["properties"].keys() == {"a", "b"}
    registry = ToolRegistry(live=supervisor)
    assert "my_server__echo" in registry.names()


async def test_calls_and_errors(supervisor: McpSupervisor) -> None:
    assert await call(supervisor, "my_server__echo", text="hi") == ("echo: hi", False)
    assert await call(supervisor, "my_server__add", a=2, b=3) == ("5", False)
    content, is_error = await call(supervisor, "my_server__fail")
    assert is_error and "fail" in content


async def test_concurrent_calls_on_one_session(supervisor: McpSupervisor) -> None:
    results: list[tuple[str, bool]] = []

    async def one(index: int) -> None:
        results.append(await call(supervisor, "my_server__echo", text=str(index)))

    async with trio.open_nursery() as nursery:
        for index in range(5):
            nursery.start_soon(one, index)
    assert sorted(results) == [(f"echo: {i}", False) for i in range(5)]


async def test_timeout_then_next_call_works(supervisor: McpSupervisor) -> None:
    content, is_error = await call(supervisor, "my_server__sleep", seconds=3)
    assert is_error and "timed out after 0.5 s" in content
    assert await call(supervisor, "my_server__echo", text="after") == ("echo: after", False)


async def test_crash_fails_fast_and_server_restarts(supervisor: McpSupervisor) -> None:
    actor = supervisor.actors["my-server"]
    first_pid, _ = await call(supervisor, "my_server__pid")
    with trio.fail_after(1):
        content, is_error = await call(supervisor, "my_server__crash")
    assert is_error and "my-server" in content
    with trio.fail_after(20):
        await wait_for(actor, ServerState.CONNECTED, connections=2)
    assert await call(supervisor, "my_server__echo", text="back") == ("echo: back", False)
    second_pid, _ = await call(supervisor, "my_server__pid")
    assert second_pid != first_pid


async def test_server_that_never_starts_fails_while_another_works() -> None:
    stuck = McpServerConfig(name="stuck", command="sleep", args=("100",), startup_timeout_secs=0.5)
    missing = McpServerConfig(name="missing", command="/nonexistent/openheim-mcp")
    async with open_mcp_supervisor([stuck, missing, server_config("good")]) as mcp:
        with trio.fail_after(20):
            await wait_for(mcp.actors["good"], ServerState.CONNECTED)
            await wait_for(mcp.actors["stuck"], ServerState.FAILED)
            await wait_for(mcp.actors["missing"], ServerState.FAILED)
        assert "did not start within 0.5 s" in (mcp.statuses()["stuck"].error or "")
        assert "not found" in (mcp.statuses()["missing"].error or "").lower()
        assert await call(mcp, "good__echo", text="x") == ("echo: x", False)
        assert [t.definition.name for t in mcp.tools() if t.definition.name.startswith("s")] == []


async def test_streamable_http_server_calls_and_reconnects(http_server: HttpServer) -> None:
    remote = McpServerConfig(name="remote", url=http_server.url, tool_timeout_secs=5)
    async with open_mcp_supervisor([remote], backoff_initial=0.05, backoff_max=0.2) as mcp:
        actor = mcp.actors["remote"]
        with trio.fail_after(10):
            await wait_for(actor, ServerState.CONNECTED)
        assert await call(mcp, "remote__add", a=20, b=22) == ("42", False)

        http_server.kill()
        with trio.fail_after(1):
            content, is_error = await call(mcp, "remote__echo", text="gone?")
        assert is_error and "remote" in content
        with trio.fail_after(5):
            await wait_for(actor, ServerState.FAILED)
        assert actor.restarts >= 0 and "remote__echo" not in [
            t.definition.name for t in mcp.tools()
        ]

        http_server.start()  # same port: the actor's next attempt finds it
        with trio.fail_after(10):
            await wait_for(actor, ServerState.CONNECTED, connections=2)
        assert await call(mcp, "remote__echo", text="back") == ("echo: back", False)
        assert actor.restarts >= 1


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_follows_tools_list_changed(transport: str, request: pytest.FixtureRequest) -> None:
    if transport == "http":
        config = McpServerConfig(name="s", url=request.getfixturevalue("http_server").url)
    else:
        config = server_config("s")
    async with open_mcp_supervisor([config]) as mcp:
        with trio.fail_after(20):
            await wait_for(mcp.actors["s"], ServerState.CONNECTED)
        assert mcp.find("s__sprout") is None
        assert await call(mcp, "s__grow", name="sprout") == ("added sprout", False)
        # The new list arrives in the background after the call's answer; no event says when.
        await wait_until(lambda: mcp.find("s__sprout") is not None, what="s__sprout")
        assert mcp.statuses()["s"].tool_count == 10
        assert await call(mcp, "s__sprout") == ("sprout works", False)


async def test_a_caller_giving_up_cancels_the_call_on_the_server(
    supervisor: McpSupervisor, tmp_path: Path
) -> None:
    marker = tmp_path / "cancelled"
    with trio.move_on_after(0.3):
        await call(supervisor, "my_server__wait", seconds=30, marker=str(marker))
    await wait_until(marker.exists, what="the server's cancel marker")  # another process's file
    # The connection stays usable after the cancel.
    assert await call(supervisor, "my_server__echo", text="still") == ("echo: still", False)


async def test_stderr_goes_to_a_log_file_per_server(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    async with open_mcp_supervisor([server_config("logged-one")], log_dir=logs) as mcp:
        with trio.fail_after(20):
            await wait_for(mcp.actors["logged-one"], ServerState.CONNECTED)
        row = mcp.describe()[0]
    log = logs / "mcp-logged_one.log"
    assert row["log"] == str(log)
    text = log.read_text()
    assert "starting" in text.splitlines()[0] and "server_app: starting" in text
    assert logs.stat().st_mode & 0o777 == 0o700 and log.stat().st_mode & 0o777 == 0o600


async def test_describe_shows_live_state_without_secrets() -> None:
    secret = server_config("live", env={"API_TOKEN": "sk-very-secret-value-123456"})
    remote = McpServerConfig(
        name="remote",
        url="http://user:pw@127.0.0.1:9/mcp?token=abc",
        headers={"Authorization": "Bearer sk-x"},
    )
    async with open_mcp_supervisor([secret, remote], backoff_initial=30) as mcp:
        with trio.fail_after(20):
            await wait_for(mcp.actors["live"], ServerState.CONNECTED)
            await wait_for(mcp.actors["remote"], ServerState.FAILED)
        rows = {row["name"]: row for row in mcp.describe()}
    assert rows["live"]["state"] == "connected" and rows["live"]["connected"] is True
    assert "live__echo" in rows["live"]["tools"] and rows["live"]["tool_count"] == 9
    assert rows["remote"]["state"] == "failed" and "connect" in rows["remote"]["error"].lower()
    assert rows["remote"]["url"] == "http://127.0.0.1:9/mcp?token=<redacted>"
    assert "sk-" not in repr(rows) and "pw" not in repr(rows)


async def test_call_to_starting_server_waits_for_it() -> None:
    async with open_mcp_supervisor([server_config("late")]) as mcp:
        assert mcp.statuses()["late"].state is ServerState.STARTING
        with trio.fail_after(20):
            assert await call(mcp, "late__echo", text="early") == ("echo: early", False)


async def test_large_results_are_capped_like_built_in_tool_output(
    supervisor: McpSupervisor,
) -> None:
    supervisor.output_limit = 100
    content, is_error = await call(supervisor, "my_server__echo", text="x" * 5000)
    assert not is_error
    assert content.startswith("echo: " + "x" * 94)
    assert content.endswith("[... output truncated: 4906 more bytes]")
