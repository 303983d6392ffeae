"""``/acp`` as the ACP Python SDK's remote clients use it: its Streamable HTTP client and its
WebSocket client, each a real process, against one server on 127.0.0.1 and the fake LLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from openheim.testing import Reply
from tests.e2e.conftest import Home, home
from tests.server.client import running_server
from tests.waiting import wait_until

__all__ = ["home"]

DRIVER = Path(__file__).with_name("remote_driver.py")
ASK_SHELL = '\n[permissions]\nexecute_command = "ask"\n'
ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"
TOKENS = f'tokens = {{ "{ALICE}" = "alice", "{BOB}" = "bob" }}'
TRANSPORTS = ["http", "ws"]


async def drive(
    home: Home, url: str, *args: str, token: str | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    extra = {"OPENHEIM_TEST_TOKEN": token} if token else {}
    folder = cwd or home.workdir
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, str(DRIVER), args[0], args[1], url, str(folder), *args[2:]],
            cwd=home.workdir,
            env=home.env(**extra),
            capture_stdout=True,
            capture_stderr=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout.decode().splitlines()[-1])
    return result


def kinds(updates: list[dict[str, Any]]) -> list[str]:
    return [
        f"{u['sessionUpdate']}:{u['status']}" if "status" in u else u["sessionUpdate"]
        for u in updates
    ]


def tool_turns() -> list[Reply]:
    """A tool call that is allowed and answered, then one that naps until cancelled."""
    return [
        Reply.tool_call("execute_command", {"command": "echo hello-remote"}, id="call_echo"),
        Reply.text("The shell said hello."),
        Reply.tool_call("execute_command", {"command": "sleep 30"}, id="call_sleep"),
    ]


def check_turn(out: dict[str, Any]) -> None:
    assert out["initialize"]["protocolVersion"] == 1
    assert out["prompt"] == {"stopReason": "end_turn"}
    turn = [u for u in out["updates"] if u["sessionUpdate"] != "usage_update"]
    assert kinds(turn)[:3] == [
        "tool_call:pending",
        "tool_call_update:in_progress",
        "tool_call_update:completed",
    ]
    assert turn[2]["content"][0]["content"]["text"] == "hello-remote"
    said = "".join(
        u["content"]["text"] for u in turn if u["sessionUpdate"] == "agent_message_chunk"
    )
    assert said == "The shell said hello."
    assert all(u["_sessionId"] == out["session_id"] for u in out["updates"])
    assert out["asked"] == [
        {"toolCallId": "call_echo", "sessionId": out["session_id"]},
        {"toolCallId": "call_sleep", "sessionId": out["session_id"]},
    ]
    assert out["cancelled"] == {"stopReason": "cancelled"}
    assert "tool_call_update:in_progress" in kinds(out["cancel_updates"])


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_tool_turn_with_permission_then_a_cancel(home: Home, transport: str) -> None:
    home.llm.script.extend(tool_turns())
    async with running_server(home, extra=ASK_SHELL) as server:
        out = await drive(home, server.url, "turn", transport)
        check_turn(out)
        # The client closed: DELETE for HTTP, a close frame for WebSocket.
        await wait_until(lambda: not server.state.connections, what="the connection to end")
    stored = json.loads((home.path / "history" / f"{out['session_id']}.json").read_text())
    assert "cancelled" in stored["messages"][-1]["content"]


@pytest.mark.parametrize(("first", "then"), [("ws", "http"), ("http", "ws")])
async def test_load_after_reconnecting_on_the_other_transport(
    home: Home, first: str, then: str
) -> None:
    home.llm.script.extend([*tool_turns(), Reply.text("Still here.")])
    async with running_server(home, extra=ASK_SHELL) as server:
        made = await drive(home, server.url, "turn", first)
        check_turn(made)
        out = await drive(home, server.url, "load", then, made["session_id"])
    replayed = kinds(out["replay"])
    assert replayed[0] == "user_message_chunk"
    assert "tool_call:completed" in replayed
    assert out["prompt"] == {"stopReason": "end_turn"}
    said = [
        u["content"]["text"] for u in out["updates"] if u["sessionUpdate"] == "agent_message_chunk"
    ]
    assert "".join(said) == "Still here."
    assert all(u["_sessionId"] == made["session_id"] for u in out["replay"] + out["updates"])


async def test_tenants_see_only_their_own_sessions(home: Home) -> None:
    home.llm.script.extend(tool_turns())
    async with running_server(home, TOKENS, extra=ASK_SHELL) as server:
        # With tokens each tenant's sessions live in a folder of the workspace of its own.
        made = await drive(
            home, server.url, "turn", "http", token=ALICE, cwd=home.workdir / "alice"
        )
        check_turn(made)
        for transport in TRANSPORTS:
            alice = await drive(home, server.url, "sessions", transport, token=ALICE)
            bob = await drive(home, server.url, "sessions", transport, token=BOB)
            assert alice["sessions"] == [made["session_id"]]
            assert bob["sessions"] == []


@pytest.mark.parametrize("policy", ["keep", "cancel"])
async def test_a_client_that_vanishes_mid_turn_is_reaped(home: Home, policy: str) -> None:
    home.llm.script.extend(tool_turns()[2:])
    server_toml = f'disconnect_grace_secs = 1\non_disconnect = "{policy}"'
    async with running_server(home, server_toml, extra=ASK_SHELL) as server:
        process = await trio.lowlevel.open_process(
            [sys.executable, str(DRIVER), "vanish", "http", server.url, str(home.workdir)],
            cwd=home.workdir,
            env=home.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            line = b""
            with trio.fail_after(30):
                while not line.endswith(b"\n"):
                    chunk = await process.stdout.receive_some(100)
                    assert chunk, "the driver ended before its turn ran"
                    line += chunk
        finally:
            process.kill()
            await process.wait()
        session_id = line.decode().strip()
        (tenant,) = server.state.tenants.live()
        # No stream and no request for the grace: the connection ends and lets its sessions go.
        await wait_until(lambda: not server.state.connections, what="the connection reaped")
        await wait_until(lambda: not tenant.holders, what="its sessions let go")
        session = tenant.registry.get(session_id)
        if policy == "keep":
            assert session is not None and session.busy  # the turn goes on in its grace

        def settled() -> bool:
            session = tenant.registry.get(session_id)
            return session is None or not session.busy

        await wait_until(settled, what="the turn to end")
    stored = json.loads((home.path / "history" / f"{session_id}.json").read_text())
    assert "cancelled" in stored["messages"][-1]["content"]
