"""MCP faults inside a turn, with ``tests/mcp/server_app.py`` as a real stdio server from the
config: a crash mid-call and a call that never returns each answer the tool call with an
error the model and the caller can read, the turn ends normally, and the next turn's MCP call
works (after an automatic restart, for the crash)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from openheim.client import ClientSession
from openheim.testing import Reply
from tests.faults.conftest import (
    Harness,
    Outcome,
    assistant,
    run_turn,
    session_with_history,
    user,
)
from tests.mcp.conftest import SERVER_APP
from tests.waiting import wait_until

PRIOR = [user("hello"), assistant("Hi.")]


def mcp_table(tool_timeout_secs: float) -> str:
    return f"""
[mcp_servers.test]
command = {json.dumps(sys.executable)}
args = [{json.dumps(str(SERVER_APP))}]
startup_timeout_secs = 20
tool_timeout_secs = {tool_timeout_secs}
"""


def check_tool_error(outcome: Outcome, message: str) -> None:
    """The turn ended normally; the tool call was answered with ``message`` as an error."""
    assert outcome.error is None, outcome.error
    assert outcome.finished is not None and outcome.finished.stop_reason == "end_turn"
    (finished,) = outcome.tool_results
    assert finished.result.is_error and finished.result.content == message


async def check_next_mcp_call_works(harness: Harness, session: ClientSession) -> None:
    """The next prompt calls the same server successfully and carries the whole history."""
    before = harness.stored(session.id)
    harness.llm.script.extend(
        [Reply.tool_call("test__echo", {"text": "back"}, id="call_echo"), Reply.text("Back.")]
    )
    outcome = await run_turn(session, "try again")
    assert outcome.error is None, outcome.error
    (echo,) = outcome.tool_results
    assert not echo.result.is_error and echo.result.content == "echo: back"
    assert harness.sent(-2) == [*before, user("try again")]
    assert harness.stored(session.id) == [
        *before,
        user("try again"),
        assistant("", "call_echo"),
        ("tool", "echo: back", ("call_echo",)),
        assistant("Back."),
    ]


async def test_mcp_server_crash_mid_call(harness: Harness) -> None:
    harness.write_config(extra=mcp_table(tool_timeout_secs=10))
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        harness.llm.script.extend(
            [Reply.tool_call("test__crash", {}, id="call_crash"), Reply.text("It crashed.")]
        )
        outcome = await run_turn(session, "crash it")
        message = "MCP server 'test' exited during the call"
        check_tool_error(outcome, message)
        assert outcome.tool_results[0].duration < 5  # at once, not at the 10 s tool timeout
        turn = [
            user("crash it"),
            assistant("", "call_crash"),
            ("tool", message, ("call_crash",)),
        ]
        assert harness.sent() == [*PRIOR, *turn]
        assert harness.stored(session.id) == [*PRIOR, *turn, assistant("It crashed.")]
        await check_next_mcp_call_works(harness, session)


async def test_mcp_server_hang_times_out(harness: Harness, tmp_path: Path) -> None:
    harness.write_config(extra=mcp_table(tool_timeout_secs=0.5))
    marker = tmp_path / "cancelled-marker"
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        arguments = {"seconds": 60, "marker": str(marker)}
        harness.llm.script.extend(
            [Reply.tool_call("test__wait", arguments, id="call_wait"), Reply.text("Too slow.")]
        )
        outcome = await run_turn(session, "wait for it")
        message = "MCP tool 'wait' timed out after 0.5 s"
        check_tool_error(outcome, message)
        assert 0.5 <= outcome.tool_results[0].duration < 5
        turn = [
            user("wait for it"),
            assistant("", "call_wait"),
            ("tool", message, ("call_wait",)),
        ]
        assert harness.stored(session.id) == [*PRIOR, *turn, assistant("Too slow.")]
        # The server was told to stop the call (notifications/cancelled), not left running it.
        await wait_until(marker.exists, what="the MCP server's cancel marker")  # its own file
        await check_next_mcp_call_works(harness, session)
