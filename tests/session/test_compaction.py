"""Long sessions against the fake LLM with a small window: compaction keeps them going.

The fake server enforces the window (``context_window``) with each provider's real error and
reports prompt tokens as it counts them, so these tests see what a user would: turns that
finish, requests that fit, and a history that keeps every message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from openheim.agent.compaction.summarise import SUMMARY_PROMPT
from openheim.agent.compaction.view import view
from openheim.agent.events import AgentEvent, Compacted, StopReason, TurnFinished
from openheim.config.load import parse_config
from openheim.config.paths import Paths
from openheim.foundation.models import Conversation, Role, ToolDefinition, ToolResult
from openheim.session import Session, SessionOptions, SessionRegistry, open_runtime
from openheim.testing import (
    FakeLLMServer,
    HttpError,
    RecordedRequest,
    Reply,
    Response,
    Script,
    open_fake_llm,
)
from openheim.testing.window import request_tokens
from openheim.tools.base import Tool, ToolContext

WINDOW = 8_000
SUMMARY = "The user fetched data sets and got answers for each."
FORMATS = {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}


def is_summary_request(request: RecordedRequest) -> bool:
    return SUMMARY_PROMPT[:60] in json.dumps(request.body)


@attrs.define
class SummarisingScript(Script):
    """The scripted turns in order; summary requests get ``summary`` instead (a reply, an
    error), whenever the client makes them."""

    summary: Response = attrs.field(factory=lambda: Reply.text(SUMMARY))
    summary_asked: trio.Event = attrs.field(factory=trio.Event)

    def respond_to(self, request: RecordedRequest) -> Response | None:
        if is_summary_request(request):
            self.summary_asked.set()
            return self.summary
        return self.next_response()


class DataTool:
    """Returns ``size`` bytes of JSON-looking data, like a real tool's dense output."""

    def __init__(self, size: int) -> None:
        self.size = size

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition("fetch_data", "Fetch a data set by number.")

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        row = '{"id": %d, "value": "abcdefghij", "ok": true},\n'
        text = "".join(row % i for i in range(self.size // len(row % 0) + 1))
        return ToolResult(text[: self.size])


def config_text(llm: FakeLLMServer, kind: str, extra: str = "") -> str:
    return f"""
default_provider = "fake"
[providers.fake]
kind = "{kind}"
api_base = "{llm.url}{FORMATS[kind]}"
default_model = "m"
api_key = "key-123"
max_retries = 0
max_tokens = 1000
context_window = {WINDOW}
{extra}
"""


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    script = SummarisingScript()
    async with open_fake_llm(script, context_window=WINDOW) as server:
        yield server


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    (tmp_path / "home").mkdir()
    return Paths(tmp_path / "home")


def tool_turns(count: int, start: int = 0) -> list[Response]:
    replies: list[Response] = []
    for turn in range(start, start + count):
        replies.append(Reply.tool_call("fetch_data", {"set": turn}, id=f"call_{turn}"))
        replies.append(Reply.text(f"Data set {turn} looks fine."))
    return replies


def paired(conversation: Conversation) -> bool:
    """Every tool call has a result, and every result a call before it."""
    calls: set[str] = set()
    for message in conversation.messages:
        calls.update(call.id for call in message.tool_calls)
        if message.role is Role.TOOL and message.tool_call_id not in calls:
            return False
    results = {m.tool_call_id for m in conversation.messages if m.role is Role.TOOL}
    return calls <= results


async def drain(events: trio.MemoryReceiveChannel[AgentEvent]) -> list[AgentEvent]:
    found = []
    while True:
        try:
            found.append(events.receive_nowait())
        except trio.WouldBlock:
            return found


def open_session(
    llm: FakeLLMServer, paths: Paths, kind: str, tools: list[Tool], extra: str = ""
) -> Any:
    config = parse_config(config_text(llm, kind, extra), paths.config_file)
    return open_runtime(config, paths, env={}, extra_tools=lambda: list(tools))


@pytest.mark.parametrize("kind", list(FORMATS))
async def test_a_50_turn_tool_heavy_session_completes_within_the_window(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path, kind: str
) -> None:
    llm.script.extend(tool_turns(50))
    async with (
        open_session(llm, paths, kind, [DataTool(6 * 1024)]) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        events = session.subscribe(buffer=10_000)
        for turn in range(50):
            finished = await session.prompt(f"Fetch data set {turn} and check it.")
            assert finished.stop_reason is StopReason.END_TURN, turn
        compactions = [e for e in await drain(events) if isinstance(e, Compacted)]
        stored = await runtime.store.load(session.id)
    # Nothing refused: every request, the summaries' too, fit the window.
    sizes = [request_tokens(request.body) for request in llm.requests]
    assert max(sizes) <= WINDOW
    assert compactions and all(e.tokens_after < e.tokens_before for e in compactions)
    assert {e.method for e in compactions} >= {"elide"}
    # At most one compaction before any request: no compaction loop.
    points = [record.at for record in stored.compactions]
    assert points == sorted(set(points)) and len(points) == len(compactions)
    # The history keeps every message; the stored records give the same view.
    assert len(stored.messages) == 200 and paired(stored)
    assert stored.compactions == session.conversation.compactions
    assert view(stored) == view(session.conversation)
    assert len(view(stored)) < len(stored.messages)


async def test_a_60_kb_tool_output_is_cut_to_fit_with_a_visible_note(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    llm.script.extend(tool_turns(1))
    async with (
        open_session(llm, paths, "openai", [DataTool(60 * 1024)]) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        finished = await session.prompt("Fetch the big one.")
        stored = await runtime.store.load(session.id)
    assert finished.stop_reason is StopReason.END_TURN
    after_tool = llm.requests[-1]
    assert request_tokens(after_tool.body) <= WINDOW
    assert "characters cut here to fit the context window" in json.dumps(after_tool.body)
    assert stored.compactions[-1].method.value == "truncate"
    assert len(stored.messages[2].content or "") == 60 * 1024  # the history keeps it whole


async def long_answer_turns(session: Session, count: int) -> None:
    for turn in range(count):
        finished = await session.prompt(f"Tell me a long story, part {turn}.")
        assert finished.stop_reason is StopReason.END_TURN


def story(turn: int) -> Reply:
    return Reply.text(f"Part {turn}: " + "once upon a time " * 300)


@pytest.mark.parametrize("kind", list(FORMATS))
async def test_a_failing_summariser_falls_back_to_dropping(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path, kind: str
) -> None:
    assert isinstance(llm.script, SummarisingScript)
    llm.script.summary = HttpError(500)
    llm.script.extend([story(turn) for turn in range(8)])
    async with (
        open_session(llm, paths, kind, []) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        events = session.subscribe(buffer=1000)
        await long_answer_turns(session, 8)
        compactions = [e for e in await drain(events) if isinstance(e, Compacted)]
    assert llm.script.summary_asked.is_set()
    assert compactions and {e.method for e in compactions} == {"drop"}
    note = view(session.conversation)[0]
    assert note.role is Role.USER and "removed without a summary" in (note.content or "")
    assert max(request_tokens(r.body) for r in llm.requests) <= WINDOW


async def test_a_summary_replaces_the_oldest_turns(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    llm.script.extend([story(turn) for turn in range(8)])
    async with (
        open_session(llm, paths, "anthropic", []) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        await long_answer_turns(session, 8)
    record = session.conversation.compactions[-1]
    assert record.method.value == "summary" and record.summary
    note = view(session.conversation)[0]
    assert "The user fetched data sets" in (note.content or "")
    # Kept turns start at a user message: the recent turns are verbatim.
    assert session.conversation.messages[record.upto].role is Role.USER


async def test_a_cancel_during_compaction_leaves_a_valid_conversation(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    assert isinstance(llm.script, SummarisingScript)
    llm.script.summary = Reply.text("never sent", stall_after=0)
    llm.script.extend([story(turn) for turn in range(3)])
    llm.script.extend(tool_turns(3, start=10))
    async with (
        open_session(llm, paths, "openai", [DataTool(2 * 1024)]) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        before: list[Any] = []
        outcome: list[TurnFinished] = []

        async def prompt_until_compaction() -> None:
            for turn in range(6):
                before[:] = list(session.conversation.compactions)
                finished = await session.prompt(f"Step {turn}: fetch and tell.")
                if finished.stop_reason is StopReason.CANCELLED:
                    outcome.append(finished)
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(prompt_until_compaction)
            with trio.fail_after(20):
                await llm.script.summary_asked.wait()
            session.cancel()
        assert outcome and outcome[0].stop_reason is StopReason.CANCELLED
        assert paired(session.conversation)
        assert session.conversation.compactions == before  # nothing half-made was recorded
        stored = await runtime.store.load(session.id)
        assert paired(stored) and stored.compactions == before
        # The session goes on: the next compaction gets its summary.
        llm.script.summary = Reply.text("Stories were told; data set 10 was fetched.")
        llm.script.extend([Reply.text("Still here.")])
        finished = await session.prompt("Are you there?")
        assert finished.stop_reason is StopReason.END_TURN


@pytest.mark.parametrize("kind", list(FORMATS))
async def test_a_refusal_for_length_is_compacted_and_retried_without_an_error(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path, kind: str
) -> None:
    """The configured window is larger than the server's: the threshold never fires, the
    provider refuses, and the turn still ends well after one compaction and one retry."""
    llm.script.extend([story(turn) for turn in range(6)])
    extra = '[providers.fake.context_windows]\n"m" = 100000\n'
    async with (
        open_session(llm, paths, kind, [], extra) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        events = session.subscribe(buffer=1000)
        await long_answer_turns(session, 6)
        compactions = [e for e in await drain(events) if isinstance(e, Compacted)]
    refused = [r for r in llm.requests if request_tokens(r.body) > WINDOW]
    assert refused and compactions
    # Each refusal was followed by a compacted request that fit.
    for request in refused:
        following = llm.requests[llm.requests.index(request) + 1 :]
        answered = [r for r in following if not is_summary_request(r)]
        assert request_tokens(answered[0].body) <= WINDOW


async def test_compact_command_compacts_now_and_is_saved(
    llm: FakeLLMServer, paths: Paths, tmp_path: Path
) -> None:
    llm.script.extend([Reply.text(f"Answer {turn}: " + "a fact. " * 200) for turn in range(4)])
    async with (
        open_session(llm, paths, "openai", []) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        for turn in range(4):
            await session.prompt(f"Question {turn}?")
        event = await session.compact()
        stored = await runtime.store.load(session.id)
    assert event is not None and event.method == "summary"
    assert event.tokens_after < event.tokens_before
    assert sum(is_summary_request(r) for r in llm.requests) == 1  # not before /compact
    assert stored.compactions and view(stored) == view(session.conversation)
