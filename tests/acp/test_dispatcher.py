"""The dispatcher in-process, with a client that reads slowly: ordering must still hold."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from openheim.acp.codec import Message, Notification, Request, Response, to_json
from openheim.acp.dispatcher import AcpDispatcher, open_dispatcher
from openheim.acp.methods import Call
from openheim.acp.settings import AcpSettings
from openheim.config.load import parse_config
from openheim.config.paths import Paths
from openheim.session import SessionRegistry, open_runtime
from openheim.testing import FakeLLMServer, Reply, open_fake_llm


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm() as server:
        yield server


@pytest.fixture
async def registry(llm: FakeLLMServer, tmp_path: Path) -> AsyncIterator[SessionRegistry]:
    paths = Paths(tmp_path / "home")
    paths.home.mkdir()
    text = f"""
default_provider = "fake"
[providers.fake]
api_base = "{llm.base_url}"
models = ["m"]
max_retries = 0
[permissions]
execute_command = "ask"
"""
    config = parse_config(text, paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        yield sessions


class SlowClient:
    """Receives what the dispatcher sends with random delays; allows every permission ask."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.dispatcher: AcpDispatcher | None = None
        self._send, self._receive = trio.open_memory_channel[Message](1)
        self.rng = random.Random(7)

    async def send(self, message: Message) -> None:
        await self._send.send(message)

    async def run(self) -> None:
        async for message in self._receive:
            await trio.sleep(self.rng.random() * 0.002)
            self.sent.append(to_json(message))
            if isinstance(message, Request) and message.method == "session/request_permission":
                assert self.dispatcher is not None
                outcome = {"outcome": "selected", "optionId": "allow_once"}
                await self.dispatcher.receive(Response(message.id, {"outcome": outcome}))

    async def start(self, dispatcher: AcpDispatcher) -> None:
        """Talk to ``dispatcher``, starting as ACP asks: with ``initialize``."""
        self.dispatcher = dispatcher
        answer = await self.call("initialize", {"protocolVersion": 1}, "init")
        assert answer["result"]["protocolVersion"] == 1

    async def call(
        self, method: str, params: dict[str, Any], request_id: int | str
    ) -> dict[str, Any]:
        assert self.dispatcher is not None
        await self.dispatcher.receive(Request(request_id, method, params))
        return await self.answer(request_id)

    async def answer(self, request_id: int | str) -> dict[str, Any]:
        """The agent's answer to ``request_id``, once this slow client has read it."""
        while True:
            for message in self.sent:
                if message.get("id") == request_id and "method" not in message:
                    return message
            await trio.sleep(0.001)


async def test_every_update_and_permission_request_is_in_order(
    llm: FakeLLMServer, registry: SessionRegistry, tmp_path: Path
) -> None:
    calls = [(f"call_{i}", "execute_command", {"command": f"echo {i}"}) for i in range(4)]
    llm.script.extend([Reply.tool_calls(calls), Reply.text("x" * 60, pieces=30)])
    client = SlowClient()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        async with open_dispatcher(registry, client.send, AcpSettings()) as dispatcher:
            await client.start(dispatcher)
            created = await client.call("session/new", {"cwd": str(tmp_path)}, 1)
            session_id = created["result"]["sessionId"]
            prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": "go"}]}
            response = await client.call("session/prompt", prompt, 2)
        nursery.cancel_scope.cancel()

    assert response["result"] == {"stopReason": "end_turn"}
    turn = client.sent[client.sent.index(created) + 1 :]
    assert turn[-1] is response  # nothing of the turn after its reply
    events = []
    text: list[str] = []
    # After the turn's own updates and before its reply: what the session now is.
    state = [m["params"]["update"]["sessionUpdate"] for m in turn[-3:-1]]
    assert state == ["session_info_update", "usage_update"]
    for message in turn[:-3]:
        if message.get("method") == "session/update":
            update = message["params"]["update"]
            events.append((update["sessionUpdate"], update.get("toolCallId"), update.get("status")))
            if update["sessionUpdate"] == "agent_message_chunk":
                text.append(update["content"]["text"])
        else:
            events.append((message["method"], message["params"]["toolCall"]["toolCallId"], None))
    for call_id, _, _ in calls:
        mine = [(kind, status) for kind, cid, status in events if cid == call_id]
        assert mine == [
            ("tool_call", "pending"),
            ("session/request_permission", None),
            ("tool_call_update", "in_progress"),
            ("tool_call_update", "completed"),
        ]
    chunks = [e for e in events if e[0] == "agent_message_chunk"]
    assert events[-len(chunks) :] == chunks and "".join(text) == "x" * 60
    # The model's 30 pieces, whole and in order; pieces that waited may have merged on the
    # way (tests/providers/test_provider_stream.py, tests/acp/test_outbox.py).
    assert 1 <= len(chunks) <= 30


async def test_a_failing_handler_is_an_internal_error_and_the_connection_goes_on(
    registry: SessionRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = SlowClient()

    async def broken(call: Call) -> Any:
        raise KeyError("bug")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        async with open_dispatcher(registry, client.send) as dispatcher:
            await client.start(dispatcher)
            monkeypatch.setitem(dispatcher._handlers, "session/list", broken)
            failed = await client.call("session/list", {}, 1)
            assert failed["error"]["code"] == -32603
            # The bug's details go to the server log, not to a client.
            assert failed["error"]["message"] == "Internal error (the server log has the details)"
            await dispatcher.receive(Notification("session/cancel", {"sessionId": "nope"}))
            assert "result" in await client.call("authenticate", {"methodId": "x"}, 2)
        nursery.cancel_scope.cancel()


async def test_prompts_queue_and_a_cancel_also_cancels_the_queued_one(
    llm: FakeLLMServer, registry: SessionRegistry, tmp_path: Path
) -> None:
    llm.script.extend(
        [
            Reply.text("first"),
            Reply.text("second"),
            Reply.text("slow third", pieces=2, chunk_delay=5),
            Reply.text("never"),
        ]
    )
    client = SlowClient()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        async with open_dispatcher(registry, client.send) as dispatcher:
            await client.start(dispatcher)
            created = await client.call("session/new", {"cwd": str(tmp_path)}, 1)
            session_id = created["result"]["sessionId"]

            def prompt(text: str) -> dict[str, Any]:
                return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}

            await dispatcher.receive(Request(2, "session/prompt", prompt("one")))
            second = await client.call("session/prompt", prompt("two"), 3)
            first = next(m for m in client.sent if m.get("id") == 2)
            assert first["result"] == second["result"] == {"stopReason": "end_turn"}
            replies = [m for m in client.sent if m.get("id") in (2, 3)]
            assert replies == [first, second]  # one after the other, in order
            texts = [
                m["params"]["update"]["content"]["text"]
                for m in client.sent
                if m.get("method") == "session/update"
                and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
            ]
            assert "".join(texts) == "firstsecond"
            assert client.sent.index(first) < len(client.sent) - 2  # "second" came after it

            await dispatcher.receive(Request(4, "session/prompt", prompt("three")))
            await dispatcher.receive(Request(5, "session/prompt", prompt("four")))
            await trio.sleep(0.2)  # "three" waits on the slow model, "four" is queued
            await dispatcher.receive(Notification("session/cancel", {"sessionId": session_id}))
            with trio.fail_after(2):
                fourth = await client.call("session/prompt", prompt("ignored"), 6)
        nursery.cancel_scope.cancel()
    by_id = {m["id"]: m for m in client.sent if "id" in m and "method" not in m}
    assert by_id[4]["result"] == by_id[5]["result"] == {"stopReason": "cancelled"}
    assert fourth["result"] == {"stopReason": "end_turn"}
    assert len(llm.requests) == 4  # "four" never reached the model; "ignored" got "never"


async def test_nothing_but_initialize_is_served_before_initialize(
    registry: SessionRegistry, tmp_path: Path
) -> None:
    client = SlowClient()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        async with open_dispatcher(registry, client.send) as dispatcher:
            client.dispatcher = dispatcher
            early = await client.call("session/new", {"cwd": str(tmp_path)}, 1)
            listed = await client.call("session/list", {}, 2)
            await dispatcher.receive(Notification("session/cancel", {"sessionId": "x"}))
            await client.start(dispatcher)
            created = await client.call("session/new", {"cwd": str(tmp_path)}, 3)
        nursery.cancel_scope.cancel()
    assert early["error"] == {
        "code": -32600,
        "message": "session/new before initialize: send initialize first",
    }
    assert listed["error"]["code"] == -32600
    assert "sessionId" in created["result"]
    assert len(registry) == 1  # only the session made after initialize


async def test_cancel_request_cancels_one_prompt_as_a_turn_and_other_requests_with_32800(
    llm: FakeLLMServer,
    registry: SessionRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    llm.script.extend(
        [Reply.text("slow one", pieces=2, chunk_delay=30), Reply.text("next"), Reply.text("3rd")]
    )
    client = SlowClient()

    async def stuck(call: Call) -> Any:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        async with open_dispatcher(registry, client.send) as dispatcher:
            await client.start(dispatcher)
            created = await client.call("session/new", {"cwd": str(tmp_path)}, 1)
            session_id = created["result"]["sessionId"]

            def prompt(text: str) -> dict[str, Any]:
                return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}

            await dispatcher.receive(Request(2, "session/prompt", prompt("slow")))
            await dispatcher.receive(Request(3, "session/prompt", prompt("after")))
            with trio.fail_after(5):  # the slow turn reached the model
                while not llm.requests:  # noqa: ASYNC110 (the fake LLM records each request)
                    await trio.sleep(0.001)
            await dispatcher.receive(Notification("$/cancel_request", {"requestId": 2}))
            with trio.fail_after(5):
                after = await client.call("session/prompt", prompt("ignored"), 4)
            monkeypatch.setitem(dispatcher._handlers, "session/list", stuck)
            await dispatcher.receive(Request(5, "session/list", {}))
            await dispatcher.receive(Notification("$/cancel_request", {"requestId": 5}))
            with trio.fail_after(5):
                stuck_answer = await client.answer(5)
                listed = await client.call("authenticate", {}, 6)
        nursery.cancel_scope.cancel()
    by_id = {m["id"]: m for m in client.sent if "id" in m and "method" not in m}
    assert by_id[2]["result"] == {"stopReason": "cancelled"}
    assert by_id[3]["result"] == {"stopReason": "end_turn"}  # queued behind it, not cancelled
    assert after["result"] == {"stopReason": "end_turn"}
    assert stuck_answer["error"] == {"code": -32800, "message": "Request cancelled"}
    assert "result" in listed
