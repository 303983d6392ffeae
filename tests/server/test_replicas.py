"""Two ``openheim serve`` replicas sharing one PostgreSQL: a session outlives its replica,
and only one replica at a time owns it (docs/server.md, "Replicas and session ownership")."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import psycopg
import trio

from openheim.testing import Reply
from tests.e2e.conftest import Home, home, request_messages
from tests.server.client import (
    WsClient,
    connect,
    prompt_params,
    server_process,
    updates,
    write_server_config,
)

__all__ = ["home"]

#: Short leases, so a test sees one run out (renewed every third of it).
LEASE = "session_lease_secs = 1"
BUSY = "is active on another server; retry in"


def second_home(home: Home) -> Path:
    """Replica B's own home: nothing on disk is shared, only the database."""
    home_b = home.path.parent / "replica-b"
    home_b.mkdir()
    shutil.copy(home.path / "config.toml", home_b / "config.toml")
    return home_b


def load_params(session_id: str, home: Home) -> dict[str, Any]:
    return {"sessionId": session_id, "cwd": str(home.workdir), "mcpServers": []}


def assert_busy(reply: dict[str, Any]) -> None:
    """The refusal a load gets while another replica owns the session: retryable, with when."""
    error = reply["error"]
    assert error["code"] == -32603 and BUSY in error["message"], reply
    assert error["data"]["retryable"] is True and 1 <= error["data"]["retryAfterSecs"] <= 1


async def load_once_free(
    client: WsClient, session_id: str, home: Home
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``session/load`` until the other replica's lease has run out; each refusal is the
    clear, retryable one."""
    with trio.fail_after(15):
        while True:
            replay, loaded = await client.call("session/load", load_params(session_id, home))
            if "result" in loaded:
                return replay, loaded
            assert_busy(loaded)
            await trio.sleep(0.05)  # polling the lease's end, which nothing announces


def stored_messages(url: str, session_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT document FROM openheim_conversations WHERE id = %s", (session_id,)
        ).fetchone()
    assert row is not None
    return list(row[0]["messages"])


async def test_a_session_continues_on_replica_b_after_replica_a_is_killed(
    home: Home, postgres_url: str
) -> None:
    write_server_config(home, LEASE)
    home_b = second_home(home)
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo from-a"}, id="call_a"),
            Reply.text("Replica A ran it."),
            Reply.text("Replica B continues."),
        ]
    )
    store = ("--store", postgres_url)
    async with (
        server_process(home, *store) as replica_a,
        server_process(home, *store, env=home.env(OPENHEIM_HOME=str(home_b))) as replica_b,
    ):
        async with connect(replica_a.ws_url) as client:
            await client.initialize()
            session_id = await client.new_session(home.workdir)
            _, reply = await client.prompt(session_id, "run echo")
            assert reply["result"] == {"stopReason": "end_turn"}
        # A keeps the session through its grace period: B may not take it meanwhile.
        async with connect(replica_b.ws_url) as client:
            await client.initialize()
            _, refused = await client.call("session/load", load_params(session_id, home))
            assert_busy(refused)
        replica_a.process.send_signal(signal.SIGKILL)
        with trio.fail_after(5):
            await replica_a.process.wait()

        async with connect(replica_b.ws_url) as client:
            await client.initialize()
            replay, loaded = await load_once_free(client, session_id, home)
            assert "result" in loaded, loaded
            kinds = [u["sessionUpdate"] for u in updates(replay)]
            assert kinds[0] == "user_message_chunk" and "tool_call" in kinds
            assert kinds[-1] == "agent_message_chunk"
            _, reply = await client.call("session/prompt", prompt_params(session_id, "go on"))
            assert reply["result"] == {"stopReason": "end_turn"}

    history = request_messages(home.llm, 2)
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant", "user"]
    assert history[2]["content"].strip() == "from-a"
    assert not list((home_b / "history").glob("*.json"))  # B wrote to the database only
    assert not list((home.path / "history").glob("*.json"))
