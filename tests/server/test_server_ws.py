"""/ws and /acp against a real server on 127.0.0.1 and the fake LLM: ACP flows, frame errors,
cancel, reconnect, and many clients at once."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from openheim.testing import RecordedRequest, Reply, Response, Script
from tests.e2e.conftest import Home, home, request_messages
from tests.server.client import (
    RawWsClient,
    WsClient,
    connect,
    kinds,
    prompt_params,
    running_server,
    server_process,
    updates,
)
from tests.waiting import wait_until

__all__ = ["home"]


def tool_then_text(command: str, text: str, call_id: str = "call_1") -> list[Reply]:
    return [Reply.tool_call("execute_command", {"command": command}, id=call_id), Reply.text(text)]


async def check_tool_flow(client: WsClient, home: Home) -> str:
    init = await client.initialize()
    assert init["protocolVersion"] == 1
    assert init["agentCapabilities"]["loadSession"] is True
    session_id = await client.new_session(home.workdir)
    uuid.UUID(session_id)
    before, response = await client.prompt(session_id, "say hello")
    assert response["result"] == {"stopReason": "end_turn"}
    assert kinds(before) == [
        "tool_call:pending",
        "tool_call_update:in_progress",
        "tool_call_update:completed",
        "agent_message_chunk",
        "agent_message_chunk",
        "agent_message_chunk",
    ]
    done = updates(before)[2]
    assert done["content"] == [{"type": "content", "content": {"type": "text", "text": "hello"}}]
    assert all(m["params"]["sessionId"] == session_id for m in before)
    return session_id


async def test_full_acp_flow_over_ws(home: Home) -> None:
    home.llm.script.extend(tool_then_text("echo hello", "It said hello."))
    async with running_server(home) as server, connect(server.ws_url) as client:
        session_id = await check_tool_flow(client, home)
        assert client.fs == []
    history = json.loads((home.path / "history" / f"{session_id}.json").read_text())
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "tool", "assistant"]


async def test_full_acp_flow_over_bare_acp(home: Home) -> None:
    home.llm.script.extend(tool_then_text("echo hello", "It said hello."))
    async with running_server(home) as server, connect(server.ws_url, "/acp") as client:
        connection_id = dict(client.ws.handshake_headers)[b"acp-connection-id"].decode()
        uuid.UUID(connection_id)
        await check_tool_flow(client, home)


async def test_bad_frames_get_fs_errors_and_the_connection_keeps_serving(home: Home) -> None:
    async with running_server(home) as server, connect(server.ws_url) as client:
        bad_frames = {
            "{not json": "Invalid payload: Expecting property name enclosed in double quotes",
            "[1, 2]": "Invalid payload: expected a JSON object, got an array",
            '"text"': "Invalid payload: expected a JSON object, got a string",
            '{"channel": "system", "data": {}}': 'Invalid payload: unknown channel "system"',
            '{"data": {}}': "Invalid payload: missing field `channel`",
            '{"channel": "agent"}': "Invalid payload: missing field `data`",
        }
        for frame, message in bad_frames.items():
            await client.send_raw(frame)
            error = await client.receive_fs()
            assert error["type"] == "error"
            assert error["message"].startswith(message), (frame, error)
        await client.ws.send_message(b"\x00binary frames are ignored")
        # A non-object agent message is a JSON-RPC error on the agent channel.
        await client.send_raw(json.dumps({"channel": "agent", "data": 7}))
        reply = await client.receive_agent()
        assert reply["error"]["code"] == -32600
        init = await client.initialize()
        assert init["protocolVersion"] == 1


async def test_oversized_frame_closes_with_1009(home: Home) -> None:
    async with (
        running_server(home, "max_frame_bytes = 2048") as server,
        connect(server.ws_url) as client,
    ):
        await client.send_raw(json.dumps({"channel": "fs", "data": "x" * 4096}))
        with pytest.raises(ConnectionClosed) as closed, trio.fail_after(5):
            await client.ws.get_message()
        assert closed.value.reason.code == 1009


async def test_cancel_then_reconnect_load_and_continue(home: Home) -> None:
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "sleep 30"}, id="call_sleep"),
            Reply.text("Back again."),
        ]
    )
    async with running_server(home) as server:
        async with connect(server.ws_url) as client:
            await client.initialize()
            session_id = await client.new_session(home.workdir)
            prompt_id = await client.request("session/prompt", prompt_params(session_id, "nap"))
            while True:  # until the shell runs
                message = await client.receive_agent()
                if message.get("params", {}).get("update", {}).get("status") == "in_progress":
                    break
            started = time.monotonic()
            await client.notify("session/cancel", {"sessionId": session_id})
            _, response = await client.until_response(prompt_id)
            assert response["result"] == {"stopReason": "cancelled"}
            assert time.monotonic() - started < 5

        async with connect(server.ws_url) as client:
            await client.initialize()
            replay, response = await client.call(
                "session/load",
                {"sessionId": session_id, "cwd": str(home.workdir), "mcpServers": []},
            )
            assert "result" in response
            assert kinds(replay)[0] == "user_message_chunk"
            assert "tool_call:completed" in kinds(replay) or "tool_call:failed" in kinds(replay)
            before, response = await client.prompt(session_id, "go on")
            assert response["result"] == {"stopReason": "end_turn"}
            assert "".join(u["content"]["text"] for u in updates(before)) == "Back again."
    roles = [(m["role"], m.get("content")) for m in request_messages(home.llm, 1)]
    assert roles[0] == ("user", "nap")
    assert roles[2][0] == "tool" and "cancelled" in roles[2][1]
    assert roles[3] == ("user", "go on")


async def test_session_new_outside_the_workspace_is_invalid_params(home: Home) -> None:
    async with running_server(home) as server, connect(server.ws_url) as client:
        await client.initialize()
        _, response = await client.call("session/new", {"cwd": "/", "mcpServers": []})
        assert response["error"]["code"] == -32602
        assert "outside" in response["error"]["message"]
        inside = home.workdir / "sub" / ".." / "sub"
        assert await client.new_session(inside)


async def test_max_sessions_per_tenant(home: Home) -> None:
    async with (
        running_server(home, "max_sessions_per_tenant = 2") as server,
        connect(server.ws_url) as client,
    ):
        await client.initialize()
        await client.new_session(home.workdir)
        await client.new_session(home.workdir)
        _, response = await client.call("session/new", {"cwd": str(home.workdir), "mcpServers": []})
        assert "too many open sessions (limit 2)" in response["error"]["message"]


class ToolThenText(Script):
    """Per conversation: a tool call for a new prompt, text once the tool has answered."""

    def respond_to(self, request: RecordedRequest) -> Response | None:
        last = request.body["messages"][-1]
        if last["role"] == "tool":
            return Reply.text(f"Done: {last['content']}", pieces=2)
        command = f"echo {last['content'].replace(' ', '-')}"
        return Reply.tool_call("execute_command", {"command": command})


async def test_fifty_concurrent_clients(home: Home) -> None:
    home.llm.app.script = ToolThenText()
    clients = 50
    results: dict[int, tuple[str, list[dict[str, Any]], dict[str, Any]]] = {}

    async def one(index: int) -> None:
        async with connect(server.ws_url) as client:
            await client.initialize()
            session_id = await client.new_session(home.workdir)
            before, response = await client.prompt(session_id, f"client {index}")
            results[index] = (session_id, before, response)

    async with running_server(home) as server:  # at most 8 turns at once (the default)
        started = time.monotonic()
        with trio.fail_after(40):
            async with trio.open_nursery() as nursery:
                for index in range(clients):
                    nursery.start_soon(one, index)
        elapsed = time.monotonic() - started
    print(f"{clients} clients, one tool-using prompt each: {elapsed:.2f} s")
    assert len(results) == clients
    assert len({session_id for session_id, _, _ in results.values()}) == clients
    for index, (session_id, before, response) in results.items():
        assert response["result"] == {"stopReason": "end_turn"}
        assert all(m["params"]["sessionId"] == session_id for m in before)
        assert kinds(before) == [
            "tool_call:pending",
            "tool_call_update:in_progress",
            "tool_call_update:completed",
            "agent_message_chunk",
            "agent_message_chunk",
        ]
        done = updates(before)[2]
        assert done["content"][0]["content"]["text"] == f"client-{index}"
        text = "".join(u["content"]["text"] for u in updates(before)[3:])
        assert text == f"Done: client-{index}"
    assert len(home.llm.requests) == 2 * clients


class StuckSocket:
    """A socket whose client sends bad frames and never reads: every send waits forever."""

    batches = True

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.closed_with: int | None = None

    async def receive_text(self) -> str | None:
        if self.frames == 0:
            await trio.sleep_forever()
        self.frames -= 1
        return "not json"

    async def send_text(self, text: str) -> None:
        await trio.sleep_forever()

    async def send_texts(self, texts: list[str]) -> None:
        await trio.sleep_forever()

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_with = code


async def test_a_full_outbound_queue_ends_the_connection_with_4408(home: Home) -> None:
    from openheim.acp.settings import AcpSettings
    from openheim.config.load import load_config
    from openheim.config.model import DisconnectPolicy
    from openheim.config.paths import Paths
    from openheim.server.tenants import Tenants
    from openheim.server.ws import OUTBOUND_FRAMES, Connection, ConnectionSettings
    from openheim.session import open_runtime

    config = load_config(home.path / "config.toml")
    settings = ConnectionSettings(AcpSettings(), 0.2, DisconnectPolicy.KEEP)
    # The writer holds one batch (up to a queue's worth) in its stuck send; then the queue fills.
    socket = StuckSocket(2 * OUTBOUND_FRAMES + 10)
    async with (
        open_runtime(config, Paths(home.path), env=home.env()) as runtime,
        Tenants.open(runtime, config.server, home.workdir, local=True) as tenants,
    ):
        tenant = await tenants.get("local")
        connection = Connection(socket, tenant, settings, multiplexed=True)  # type: ignore[arg-type]
        started = time.monotonic()
        with trio.fail_after(5):
            await connection.run()
    assert socket.closed_with == 4408
    assert 0.2 <= time.monotonic() - started < 2
    assert tenant.holders == set()


async def start_sleeping_turn(client: WsClient, home: Home) -> str:
    await client.initialize()
    session_id = await client.new_session(home.workdir)
    await client.request("session/prompt", prompt_params(session_id, "nap"))
    while True:
        message = await client.receive_agent()
        if message.get("params", {}).get("update", {}).get("status") == "in_progress":
            return session_id


async def test_dropped_sessions_live_for_the_grace_then_close(home: Home) -> None:
    home.llm.script.append(
        Reply.tool_call("execute_command", {"command": "sleep 30"}, id="call_sleep")
    )
    # The grace is the subject: the client must reconnect within it, so it is ample for a
    # loaded machine; the test waits for the grace timers themselves, not for a guessed time.
    async with running_server(home, "disconnect_grace_secs = 1") as server:
        async with connect(server.ws_url) as client:
            busy = await start_sleeping_turn(client, home)
            idle = await client.new_session(home.workdir)
        (tenant,) = server.state.tenants.live()
        # The connection lets go of its sessions (and starts their grace) as it ends.
        await wait_until(lambda: not tenant.holders, what="the server to see the client leave")
        session = tenant.registry.get(busy)
        assert session is not None and session.busy  # on_disconnect = "keep"
        async with connect(server.ws_url) as client:
            await client.initialize()
            await client.call("session/load", {"sessionId": idle, "cwd": str(home.workdir)})
            # Each grace timer leaves ``_expiring`` as it fires; no event announces it.
            await wait_until(lambda: not tenant._expiring, what="both grace timers to fire")
            assert tenant.registry.get(busy) is None  # closed after the grace, turn cancelled
            assert tenant.registry.get(idle) is not None  # taken back in time
    document = json.loads((home.path / "history" / f"{busy}.json").read_text())
    assert [m["role"] for m in document["messages"]] == ["user", "assistant", "tool"]


async def test_on_disconnect_cancel_stops_the_turn(home: Home) -> None:
    home.llm.script.append(
        Reply.tool_call("execute_command", {"command": "sleep 30"}, id="call_sleep")
    )
    async with running_server(home, 'on_disconnect = "cancel"') as server:
        async with connect(server.ws_url) as client:
            session_id = await start_sleeping_turn(client, home)
        (tenant,) = server.state.tenants.live()

        def settled() -> bool:
            session = tenant.registry.get(session_id)
            return session is None or not session.busy

        # ``busy`` is a flag with no event (the turn may end before anyone could subscribe).
        await wait_until(settled, what="the cancelled turn to be saved")
        stored = home.path / "history" / f"{session_id}.json"
        assert "cancelled" in json.loads(stored.read_text())["messages"][2]["content"]


async def test_turns_wait_for_a_tenant_slot_and_can_be_cancelled_while_waiting(home: Home) -> None:
    home.llm.script.append(
        Reply.tool_call("execute_command", {"command": "sleep 30"}, id="call_sleep")
    )
    async with (
        running_server(home, "max_turns_per_tenant = 1") as server,
        connect(server.ws_url) as client,
    ):
        await start_sleeping_turn(client, home)
        waiting = await client.new_session(home.workdir)
        prompt_id = await client.request("session/prompt", prompt_params(waiting, "queued"))
        (tenant,) = server.state.tenants.live()
        slots = tenant.runtime.turn_slots
        assert slots is not None
        # The server has taken the prompt once its turn queues for the tenant's one slot.
        await wait_until(lambda: slots.statistics().tasks_waiting == 1, what="a queued turn")
        assert len(home.llm.requests) == 1  # the second turn has no slot yet
        await client.notify("session/cancel", {"sessionId": waiting})
        _, response = await client.until_response(prompt_id)
        assert response["result"] == {"stopReason": "cancelled"}
        assert len(home.llm.requests) == 1


async def test_invalid_utf8_in_a_text_frame_gets_a_1007_close(home: Home) -> None:
    async with running_server(home) as server, RawWsClient.open(server.ws_url, "/acp") as raw:
        # A text frame (FIN, opcode 1), masked as a client must, whose payload is not UTF-8.
        payload, mask = b"\xff\xfe{}", b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await raw.stream.send_all(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        with trio.fail_after(5):
            while not raw.ended and raw.close_code is None:
                await raw._read()
        assert raw.close_code == 1007


async def test_an_oversized_message_is_refused_without_being_read_into_memory(
    home: Home,
) -> None:
    """200 MiB in one text message against the default 4 MiB bound: 1009, and the server's
    memory does not grow by what the client goes on sending."""
    size, piece = 200 * 1024 * 1024, b"a" * (1024 * 1024)
    # FIN + text; mask bit + 64-bit length; a zero mask key leaves the payload as sent.
    header = bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big") + b"\0\0\0\0"
    async with server_process(home) as server:
        before = server.rss_kib()
        async with RawWsClient.open(server.ws_url, "/acp") as raw:
            sent = 0
            with trio.fail_after(30):
                try:
                    await raw.stream.send_all(header)
                    while sent < size:
                        await raw.stream.send_all(piece)
                        sent += len(piece)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                while not raw.ended and raw.close_code is None:
                    await raw._read()
            grown_mib = (server.rss_kib() - before) / 1024
    assert raw.close_code == 1009
    assert sent < size  # the server stopped reading
    assert grown_mib < 40, f"server RSS grew by {grown_mib:.0f} MiB"
