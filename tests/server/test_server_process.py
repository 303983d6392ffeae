"""``openheim serve`` as a real process: a client that stops reading, and SIGTERM mid-turn."""

from __future__ import annotations

import json
import time

import pytest
import trio
from trio_websocket import ConnectionClosed

from openheim.testing import Reply, TextChunk
from tests.e2e.conftest import Home, home
from tests.server.client import (
    RawWsClient,
    ServerProcess,
    connect,
    prompt_params,
    server_process,
    write_server_config,
)
from tests.waiting import wait_until

__all__ = ["home"]

CHUNKS = 50_000
#: Growth allowed while a client that reads nothing is fed 50,000 updates. Everything between
#: the LLM stream and the socket is bounded (64 turn events, 256 per subscriber, 128 frames,
#: 4 queued ASGI messages), a few hundred KiB all told; the rest is allocator noise. Queueing
#: every update instead would take about 50,000 x (a ~230-byte frame string plus the event and
#: its update dicts, ~2 KiB) = 100 MiB or more.
MAX_GROWTH_MIB = 25


def rpc(request_id: int, method: str, params: object) -> str:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    return json.dumps({"channel": "agent", "data": message})


async def answer(client: RawWsClient, request_id: int) -> dict[str, object]:
    while True:
        text = await client.receive_text()
        assert text is not None
        data = json.loads(text)["data"]
        if data.get("id") == request_id:
            return data


async def sample_rss(server: ServerProcess, peak: list[int]) -> None:
    """Sample the server's RSS every 20 ms until cancelled. This sleep stays: it paces the
    sampler (the subject is the peak it sees), nothing waits on it."""
    while True:
        peak[0] = max(peak[0], server.rss_kib())
        await trio.sleep(0.02)


async def test_a_client_that_stops_reading_is_cut_off_and_memory_stays_bounded(
    home: Home,
) -> None:
    home.llm.script.extend(
        [
            Reply.text("Warm."),
            Reply(tuple(TextChunk("x") for _ in range(CHUNKS))),
            Reply.text("Still here."),
        ]
    )
    write_server_config(home, "slow_client_timeout_secs = 1.5")
    async with server_process(home) as server, connect(server.ws_url) as other:
        await other.initialize()
        other_session = await other.new_session(home.workdir)
        _, response = await other.prompt(other_session, "warm up")
        assert response["result"] == {"stopReason": "end_turn"}
        baseline = server.rss_kib()
        peak = [baseline]

        async with RawWsClient.open(server.ws_url, "/ws") as slow, trio.open_nursery() as sampler:
            sampler.start_soon(sample_rss, server, peak)
            assert json.loads(await slow.receive_text() or "")["data"]["type"] == "connected"
            await slow.send_text(rpc(1, "initialize", {"protocolVersion": 1}))
            await answer(slow, 1)
            await slow.send_text(rpc(2, "session/new", {"cwd": str(home.workdir)}))
            session_id = (await answer(slow, 2))["result"]["sessionId"]  # type: ignore[index]
            await slow.send_text(rpc(3, "session/prompt", prompt_params(session_id, "stream")))
            started = time.monotonic()
            with trio.fail_after(10):
                await home.llm.wait_for_requests(2)

            # The slow client reads nothing from here on; another client is served meanwhile.
            _, response = await other.prompt(other_session, "still there?")
            assert response["result"] == {"stopReason": "end_turn"}

            # The socket layer (StallGuard) or the outbound queue cuts it off, whichever first.
            await server.wait_for_log("read nothing for 1.5 s", seconds=30)
            cut_after = time.monotonic() - started

            received = 0
            with trio.fail_after(30):
                while await slow.receive_text() is not None:
                    received += 1
            # on_disconnect = "keep": the turn streams on to the end and is saved.
            stored = home.path / "history" / f"{session_id}.json"

            def saved_answer() -> str | None:
                """The stored turn's answer; session/new stored the session empty."""
                messages = json.loads(stored.read_text())["messages"] if stored.exists() else []
                last = messages[-1] if messages else {}
                return last.get("content") if last.get("role") == "assistant" else None

            # Written by the server process: only polling sees it.
            await wait_until(lambda: saved_answer() is not None, seconds=30, what=str(stored))
            sampler.cancel_scope.cancel()
        assert saved_answer() == "x" * CHUNKS
        growth_mib = (peak[0] - baseline) / 1024
        print(
            f"slow client: cut off after {cut_after:.1f} s having received {received} of "
            f"{CHUNKS} updates; server RSS {baseline / 1024:.1f} MiB, "
            f"peak +{growth_mib:.1f} MiB"
        )
        assert received < CHUNKS
        assert growth_mib < MAX_GROWTH_MIB


async def test_sigterm_mid_turn_cancels_saves_and_closes_with_1001(home: Home) -> None:
    home.llm.script.append(
        Reply.tool_call("execute_command", {"command": "sleep 30"}, id="call_sleep")
    )
    write_server_config(home)
    async with server_process(home) as server:
        async with connect(server.ws_url) as client:
            await client.initialize()
            session_id = await client.new_session(home.workdir)
            prompt_id = await client.request("session/prompt", prompt_params(session_id, "nap"))
            while True:
                message = await client.receive_agent()
                if message.get("params", {}).get("update", {}).get("status") == "in_progress":
                    break
            started = time.monotonic()
            server.terminate()
            _, response = await client.until_response(prompt_id)
            assert response["result"] == {"stopReason": "cancelled"}
            with pytest.raises(ConnectionClosed) as closed, trio.fail_after(10):
                await client.ws.get_message()
            assert closed.value.reason.code == 1001
        with trio.fail_after(10):
            assert await server.process.wait() == 0
        assert time.monotonic() - started < 6
    document = home.only_history()
    assert [m["role"] for m in document["messages"]] == ["user", "assistant", "tool"]
    assert document["messages"][2]["tool_call_id"] == "call_sleep"
    assert "cancelled" in document["messages"][2]["content"]
