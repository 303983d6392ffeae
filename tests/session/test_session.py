"""The session engine against the fake LLM server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from openheim.agent.events import (
    AgentEvent,
    MessageChunk,
    StopReason,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from openheim.config.load import parse_config
from openheim.config.paths import Paths
from openheim.foundation.errors import ConfigError, ProviderError
from openheim.foundation.models import ReasoningLevel, Role, ToolCall
from openheim.permissions import Answer
from openheim.session import SessionOptions, SessionRegistry, open_runtime
from openheim.testing import FakeLLMServer, HttpError, Reply, open_fake_llm
from tests.processes import live_with_marker, unique_seconds
from tests.waiting import wait_until


def config_text(llm: FakeLLMServer, extra: str = "") -> str:
    return f"""
default_provider = "fake"
[providers.fake]
api_base = "{llm.base_url}"
default_model = "m1"
models = ["m1", "m2"]
max_retries = 0
{extra}
"""


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm() as server:
        yield server


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    (tmp_path / "home").mkdir()
    return Paths(tmp_path / "home")


async def collect_turn(receive: trio.MemoryReceiveChannel[AgentEvent]) -> list[AgentEvent]:
    events = []
    async for event in receive:
        events.append(event)
        if isinstance(event, TurnFinished):
            return events
    return events


async def test_prompt_streams_events_to_every_subscriber_and_saves(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    llm.script.extend(
        [Reply.tool_call("execute_command", {"command": "echo hi"}), Reply.text("Said hi.")]
    )
    config = parse_config(config_text(llm), paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        first, second = session.subscribe(), session.subscribe()
        finished = await session.prompt("say hi")
        events = await collect_turn(first)
        kinds = [type(e) for e in events]
        # The reply's pieces, merged where they waited for the turn (a backlog).
        assert kinds[:2] == [ToolCallStarted, ToolCallFinished] and kinds[-1] is TurnFinished
        assert 1 <= len(kinds[2:-1]) <= 3 and set(kinds[2:-1]) == {MessageChunk}
        assert "".join(e.text for e in events if isinstance(e, MessageChunk)) == "Said hi."
        assert await collect_turn(second) == events
        assert finished.stop_reason is StopReason.END_TURN
        stored = await runtime.store.load(session.id)
        assert [m.role for m in stored.messages] == [
            Role.USER,
            Role.ASSISTANT,
            Role.TOOL,
            Role.ASSISTANT,
        ]
        assert sessions.get(session.id) is session
        assert (await sessions.load(session.id, SessionOptions(cwd=tmp_path))) is session


async def test_cancel_stops_the_turn_and_the_session_stays_usable(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    marker = unique_seconds(30)
    llm.script.extend(
        [Reply.tool_call("execute_command", {"command": f"sleep {marker}"}), Reply.text("after")]
    )
    config = parse_config(config_text(llm), paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        events = session.subscribe()
        async with trio.open_nursery() as nursery:

            async def cancel_when_tool_runs() -> None:
                async for event in events:
                    if isinstance(event, ToolCallStarted):
                        # Cancel a command that really runs: its process is the only sign.
                        await wait_until(lambda: live_with_marker(marker), what="the command")
                        session.cancel()
                        return

            nursery.start_soon(cancel_when_tool_runs)
            with trio.fail_after(3):
                finished = await session.prompt("sleep")
        assert finished.stop_reason is StopReason.CANCELLED
        assert (await session.prompt("again")).stop_reason is StopReason.END_TURN
        assert session.conversation.messages[2].content.startswith("cancelled")


async def test_prompts_queue_one_at_a_time(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    llm.script.extend([Reply.text("one", chunk_delay=0.05), Reply.text("two")])
    config = parse_config(config_text(llm), paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        answers: dict[str, StopReason] = {}

        async def ask(text: str) -> None:
            answers[text] = (await session.prompt(text)).stop_reason

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "first")
            with trio.fail_after(10):
                await llm.wait_for_requests(1)  # "first" is running: "second" must queue
            nursery.start_soon(ask, "second")
        assert len(answers) == 2
        contents = [m.content for m in session.conversation.messages]
        assert contents == ["first", "one", "second", "two"]
        assert llm.app.peak_in_flight == 1


async def test_errors_reach_the_caller_unwrapped(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    llm.script.extend([HttpError(400, body="bad request"), Reply.text("fine")])
    config = parse_config(config_text(llm), paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        with pytest.raises(ConfigError, match="model 'nope'"):
            await sessions.create(SessionOptions(cwd=tmp_path, model="nope"))
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        with pytest.raises(ProviderError, match="bad request"):
            await session.prompt("hi")
        assert (await session.prompt("hi again")).stop_reason is StopReason.END_TURN


async def test_set_model_applies_to_the_next_turn(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    llm.script.extend([Reply.text("a"), Reply.text("b")])
    config = parse_config(config_text(llm), paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        await session.prompt("x")
        session.set_model("m2")
        await session.prompt("y")
        with pytest.raises(ConfigError):
            session.set_model("gpt-0")
    assert [r.body["model"] for r in llm.requests] == ["m1", "m2"]


async def test_set_reasoning_overrides_the_config_for_the_session(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    llm.script.extend([Reply.text(text) for text in "abcd"])
    extra = '[providers.fake.reasoning_by_model]\n"m2" = "high"\n'
    config = parse_config(config_text(llm, extra), paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        assert session.reasoning is ReasoningLevel.OFF
        await session.prompt("config: off for m1")
        session.set_model("m2")
        await session.prompt("config: high for m2")
        assert session.set_reasoning("low") is ReasoningLevel.LOW
        await session.prompt("overridden")
        with pytest.raises(ConfigError, match="use one of off, low, medium, high"):
            session.set_reasoning("max")
        assert session.set_reasoning(None) is ReasoningLevel.HIGH
        await session.prompt("back to the config")
    efforts = [r.body.get("reasoning_effort") for r in llm.requests]
    assert efforts == [None, "high", "low", "high"]


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([Answer.ALLOW_ONCE], ["hi", "denied"]),
        ([Answer.REJECT_ONCE], ["permission denied: the user rejected", "denied"]),
        ([Answer.ALLOW_ALWAYS], ["hi", "hi"]),
    ],
)
async def test_ask_policy_uses_the_face_asker(
    llm: FakeLLMServer,
    paths: Paths,
    tmp_path: Path,
    answers: list[Answer],
    expected: list[str],
) -> None:
    call = Reply.tool_call("execute_command", {"command": "echo hi"})
    llm.script.extend([call, Reply.text("1"), call, Reply.text("2")])
    extra = '[permissions]\nexecute_command = "ask"'
    config = parse_config(config_text(llm, extra), paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        queue = list(answers)
        asked: list[ToolCall] = []

        async def asker(call: ToolCall) -> Answer | None:
            asked.append(call)
            return queue.pop(0) if queue else None

        async with session.attach(asker):
            await session.prompt("first")
            await session.prompt("second")
    results = [m.content or "" for m in session.conversation.messages if m.role is Role.TOOL]
    for result, want in zip(results, expected, strict=True):
        if want == "denied":
            assert result.startswith("permission denied: nobody was available")
        else:
            assert result.startswith(want)


async def test_the_latest_attached_face_answers_and_leaving_hands_back(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    config = parse_config(config_text(llm), paths.config_file)

    async def first(call: ToolCall) -> Answer | None:
        return Answer.ALLOW_ONCE

    async def second(call: ToolCall) -> Answer | None:
        return Answer.REJECT_ONCE

    editor = object()  # a face's FileAccess; only its identity matters here
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        assert session.asker is None and session.files is None
        async with session.attach(first, editor) as held:  # type: ignore[arg-type]
            async with session.attach(second):
                assert session.asker is second
                assert session.files is editor  # the later face offers no files of its own
                held.claim()
                assert session.asker is first
            assert session.asker is first
            held.release()
            assert session.asker is None and session.files is None
        assert session.asker is None
