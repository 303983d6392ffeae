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


async def test_a_fenced_replica_stops_its_turn_and_overwrites_nothing(
    home: Home, postgres_url: str
) -> None:
    """A stops mid-turn (SIGSTOP) past its lease; B takes the session over and answers. When A
    wakes, its renewal finds B's lease: A drops the session, its save fails loudly, and the
    database keeps B's conversation."""
    write_server_config(home, LEASE)
    home_b = second_home(home)
    home.llm.script.extend(
        [Reply.text("A never finishes", stall_after=1), Reply.text("B answered")]
    )
    store = ("--store", postgres_url)
    async with (
        server_process(home, *store) as replica_a,
        server_process(home, *store, env=home.env(OPENHEIM_HOME=str(home_b))) as replica_b,
        connect(replica_a.ws_url) as client_a,
    ):
        await client_a.initialize()
        session_id = await client_a.new_session(home.workdir)
        stalled = await client_a.request("session/prompt", prompt_params(session_id, "from A"))
        await home.llm.wait_for_requests(1)
        replica_a.process.send_signal(signal.SIGSTOP)
        try:
            async with connect(replica_b.ws_url) as client_b:
                await client_b.initialize()
                await load_once_free(client_b, session_id, home)
                _, reply = await client_b.prompt(session_id, "from B")
                assert reply["result"] == {"stopReason": "end_turn"}
        finally:
            replica_a.process.send_signal(signal.SIGCONT)

        _, answer = await client_a.until_response(stalled)
        # The turn in flight is cancelled, and its save, fenced, fails loudly.
        assert answer["error"]["code"] == -32603, answer
        assert "is no longer owned by this server" in answer["error"]["message"], answer
        await replica_a.wait_for_log("ownership lost")
        _, again = await client_a.prompt(session_id, "still there?")
        assert (
            f"session {session_id} is no longer owned by this server" in (again["error"]["message"])
        ), again
        assert "fix: load it again" in again["error"]["message"]

    # A's turn was never saved (A stopped mid-turn), and its fenced save wrote nothing.
    messages = stored_messages(postgres_url, session_id)
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "from B"),
        ("assistant", "B answered"),
    ]


async def test_renewal_keeps_a_long_turn_owned(home: Home, postgres_url: str) -> None:
    """A turn that outlasts several leases stays A's: B is refused throughout, and A's save at
    the end is not fenced."""
    write_server_config(home, LEASE)
    home_b = second_home(home)
    home.llm.script.extend([Reply.text("thinking long", stall_after=1), Reply.text("done")])
    store = ("--store", postgres_url)
    async with (
        server_process(home, *store) as replica_a,
        server_process(home, *store, env=home.env(OPENHEIM_HOME=str(home_b))) as replica_b,
        connect(replica_a.ws_url) as client_a,
        connect(replica_b.ws_url) as client_b,
    ):
        await client_a.initialize()
        await client_b.initialize()
        session_id = await client_a.new_session(home.workdir)
        long_turn = await client_a.request("session/prompt", prompt_params(session_id, "go"))
        await home.llm.wait_for_requests(1)
        first_expiry = lease_expiry(postgres_url, session_id)
        with trio.fail_after(10):  # three leases' worth of renewals
            while lease_expiry(postgres_url, session_id) - first_expiry < 3:
                _, refused = await client_b.call("session/load", load_params(session_id, home))
                assert_busy(refused)
                await trio.sleep(0.05)  # polling the renewals, which nothing announces
        await client_a.notify("session/cancel", {"sessionId": session_id})
        _, answer = await client_a.until_response(long_turn)
        assert answer["result"] == {"stopReason": "cancelled"}, answer
        _, reply = await client_a.prompt(session_id, "and now?")
        assert reply["result"] == {"stopReason": "end_turn"}, reply
        assert "ownership lost" not in replica_a.stderr()

    messages = stored_messages(postgres_url, session_id)
    assert [m["content"] for m in messages if m["role"] == "user"] == ["go", "and now?"]
    assert messages[-1]["content"] == "done"


def lease_expiry(url: str, session_id: str) -> float:
    """When the session's lease runs out, in seconds since the epoch (the database's clock):
    its own expiry, or its owner's heartbeat, whichever is later."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT extract(epoch FROM greatest(lease.expires_at, beat.expires_at))::float8 "
            "FROM openheim_leases lease LEFT JOIN openheim_owners beat USING (owner) "
            "WHERE lease.id = %s",
            (session_id,),
        ).fetchone()
    assert row is not None, "the session holds no lease"
    return float(row[0])


async def test_two_processes_on_one_history_folder_never_share_a_session(home: Home) -> None:
    """The file store: a second process (a second worker) is refused a session the first holds,
    and gets it once the first has closed it."""
    write_server_config(home)
    home.llm.script.extend([Reply.text("first answer"), Reply.text("second answer")])
    async with (
        server_process(home) as worker_a,
        server_process(home) as worker_b,
        connect(worker_a.ws_url) as client_a,
        connect(worker_b.ws_url) as client_b,
    ):
        await client_a.initialize()
        await client_b.initialize()
        session_id = await client_a.new_session(home.workdir)
        _, reply = await client_a.prompt(session_id, "hello")
        assert reply["result"] == {"stopReason": "end_turn"}
        _, refused = await client_b.call("session/load", load_params(session_id, home))
        error = refused["error"]
        assert error["code"] == -32603 and error["data"] == {"retryable": True}, refused
        assert error["message"] == (
            f"session {session_id} is active in another openheim process; "
            "retry once that process has closed it"
        )
        assert await client_a.result("session/close", {"sessionId": session_id}) == {}
        with trio.fail_after(15):  # the close answers before the session has saved and let go
            while True:
                _, loaded = await client_b.call("session/load", load_params(session_id, home))
                if "result" in loaded:
                    break
                await trio.sleep(0.05)
        _, reply = await client_b.prompt(session_id, "again")
        assert reply["result"] == {"stopReason": "end_turn"}
    history = request_messages(home.llm, 1)
    assert [m["content"] for m in history] == ["hello", "first answer", "again"]
