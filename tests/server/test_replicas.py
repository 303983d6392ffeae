"""Two ``openheim serve`` replicas sharing one PostgreSQL: a session outlives its replica."""

from __future__ import annotations

import shutil
import signal

import trio

from openheim.testing import Reply
from tests.e2e.conftest import Home, home, request_messages
from tests.server.client import connect, prompt_params, server_process, updates, write_server_config

__all__ = ["home"]


async def test_a_session_continues_on_replica_b_after_replica_a_is_killed(
    home: Home, postgres_url: str
) -> None:
    write_server_config(home)
    # Replica B has its own home: nothing on disk is shared, only the database.
    home_b = home.path.parent / "replica-b"
    home_b.mkdir()
    shutil.copy(home.path / "config.toml", home_b / "config.toml")
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
        replica_a.process.send_signal(signal.SIGKILL)
        with trio.fail_after(5):
            await replica_a.process.wait()

        async with connect(replica_b.ws_url) as client:
            await client.initialize()
            replay, loaded = await client.call(
                "session/load",
                {"sessionId": session_id, "cwd": str(home.workdir), "mcpServers": []},
            )
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
