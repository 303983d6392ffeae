"""The turn logic against a scripted in-process provider and small custom tools.

Everything here runs in this trio run without I/O, so tests whose tools or cancels take time
use the ``autojump_clock``: the clock jumps to the next deadline once every task waits. A
"slow" tool's sleep then orders events for certain and costs no wall-clock time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from openheim.agent.events import (
    AgentEvent,
    MessageChunk,
    StopReason,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from openheim.agent.loop import Turn, TurnSettings
from openheim.foundation.errors import ProviderError
from openheim.foundation.models import (
    Conversation,
    Role,
    ToolCall,
    ToolDefinition,
    ToolResult,
    Usage,
)
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    ProviderEvent,
    StreamEnd,
    TextDelta,
)
from openheim.tools.base import ToolContext, ToolRegistry

Step = Sequence[ProviderEvent] | ProviderError


def answer(text: str, finish: FinishReason = FinishReason.STOP) -> list[ProviderEvent]:
    return [TextDelta(text), StreamEnd(text, (), finish, Usage(3, 2))]


def calls(*tool_calls: ToolCall) -> list[ProviderEvent]:
    return [StreamEnd("", tool_calls, FinishReason.TOOL_CALLS, Usage(5, 1))]


class ScriptedProvider:
    def __init__(self, steps: Sequence[Step], *, hang_after: int | None = None) -> None:
        self.steps = list(steps)
        self.requests: list[ChatRequest] = []
        self.hang_after = hang_after

    @asynccontextmanager
    async def stream(self, request: ChatRequest) -> AsyncIterator[AsyncIterator[ProviderEvent]]:
        self.requests.append(request)
        step = self.steps.pop(0)
        hang = self.hang_after is not None and len(self.requests) > self.hang_after

        yield _Events(step, hang)


class _Events:
    """Like the real provider stream: a plain async iterator, not a generator."""

    def __init__(self, step: Step, hang: bool) -> None:
        self.step = step
        self.hang = hang
        self.position = 0

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> ProviderEvent:
        await trio.lowlevel.checkpoint()
        if isinstance(self.step, ProviderError):
            raise self.step
        if self.position >= len(self.step):
            raise StopAsyncIteration
        event = self.step[self.position]
        self.position += 1
        if self.hang and isinstance(event, StreamEnd):
            await trio.sleep_forever()
        return event


class Echo:
    definition = ToolDefinition("echo", "Echo text back.", {"type": "object"})

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        await trio.sleep(self.delay)  # a slow tool is the subject; tests give it the autojump clock
        return ToolResult(f"echo: {arguments['text']}")


class Sleeper:
    definition = ToolDefinition("sleep", "Sleep.", {"type": "object"})

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        await trio.sleep(30)  # a tool that hangs: the subject; its test has the autojump clock
        return ToolResult("slept")


class Broken:
    definition = ToolDefinition("broken", "Always raises.", {"type": "object"})

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        raise RuntimeError("disk on fire")


async def run(
    provider: ScriptedProvider,
    *,
    tools: Sequence[Any] = (Echo(),),
    max_iterations: int = 10,
    conversation: Conversation | None = None,
    cancel_after: float | None = None,
    **settings: Any,
) -> tuple[Conversation, list[AgentEvent], TurnFinished]:
    conversation = conversation or Conversation(id="c1")
    send, receive = trio.open_memory_channel[AgentEvent](100)
    turn = Turn(
        conversation,
        "do it",
        provider=provider,
        tools=ToolRegistry(tools),
        context=ToolContext(cwd=Path("/")),
        settings=TurnSettings(
            model="m", max_iterations=max_iterations, system_prompt="sys", **settings
        ),
        events=send,
    )
    if cancel_after is None:
        finished = await turn.run()
    else:
        async with trio.open_nursery() as nursery:

            async def cancel_later() -> None:
                await trio.sleep(cancel_after)  # on the autojump clock: once all else waits
                turn.cancel()

            nursery.start_soon(cancel_later)
            finished = await turn.run()
            nursery.cancel_scope.cancel()
    send.close()
    events = [event async for event in receive]
    return conversation, events, finished


async def test_plain_answer() -> None:
    provider = ScriptedProvider([answer("Hello")])
    conversation, events, finished = await run(provider)
    assert finished == TurnFinished(StopReason.END_TURN, Usage(3, 2), 1, context_tokens=5)
    assert events == [MessageChunk("Hello"), finished]
    assert [m.role for m in conversation.messages] == [Role.USER, Role.ASSISTANT]
    request = provider.requests[0]
    assert request.messages[0].role is Role.SYSTEM and request.messages[0].content == "sys"
    assert [t.name for t in request.tools] == ["echo"]


async def test_tool_call_then_answer_feeds_result_back() -> None:
    call = ToolCall("c-1", "echo", '{"text": "hi"}')
    provider = ScriptedProvider([calls(call), answer("done")])
    _, events, finished = await run(provider)
    assert finished.stop_reason is StopReason.END_TURN
    assert finished.usage == Usage(8, 3)
    assert finished.iterations == 2
    second = provider.requests[1].messages
    assert second[-1].role is Role.TOOL and second[-1].content == "echo: hi"
    assert second[-1].tool_call_id == "c-1"
    assert isinstance(events[0], ToolCallStarted)
    assert isinstance(events[1], ToolCallFinished) and events[1].result.content == "echo: hi"


async def test_parallel_results_keep_request_order(autojump_clock: MockClock) -> None:
    slow = ToolCall("a", "echo", '{"text": "slow"}')
    fast = ToolCall("b", "quick", '{"text": "fast"}')

    class Quick(Echo):
        definition = ToolDefinition("quick", "Quick echo.", {"type": "object"})

    provider = ScriptedProvider([calls(slow, fast), answer("ok")])
    conversation, events, _ = await run(provider, tools=[Echo(delay=0.2), Quick()])
    finished_order = [e.call.id for e in events if isinstance(e, ToolCallFinished)]
    assert finished_order == ["b", "a"]  # ran concurrently
    tool_messages = [m for m in conversation.messages if m.role is Role.TOOL]
    assert [m.tool_call_id for m in tool_messages] == ["a", "b"]


async def test_bad_arguments_unknown_tool_and_crashing_tool_become_tool_errors() -> None:
    provider = ScriptedProvider(
        [
            calls(
                ToolCall("1", "echo", '{"text": '),
                ToolCall("2", "nope", "{}"),
                ToolCall("3", "broken", "{}"),
                ToolCall("4", "echo", "[1]"),
            ),
            answer("recovered"),
        ]
    )
    conversation, _, finished = await run(provider, tools=[Echo(), Broken()])
    assert finished.stop_reason is StopReason.END_TURN
    results = {m.tool_call_id: m for m in conversation.messages if m.role is Role.TOOL}
    assert all(m.is_error for m in results.values())
    assert "invalid arguments for echo: arguments are not valid JSON" in results["1"].content
    assert "unknown tool 'nope'; available tools: echo, broken" in results["2"].content
    assert "broken failed: RuntimeError: disk on fire" in results["3"].content
    assert "must be a JSON object" in results["4"].content


async def test_max_iterations_stops_clearly() -> None:
    call = ToolCall("x", "echo", '{"text": "again"}')
    provider = ScriptedProvider([calls(call), calls(ToolCall("y", "echo", '{"text": "1"}'))])
    conversation, _, finished = await run(provider, max_iterations=2)
    assert finished.stop_reason is StopReason.MAX_TURN_REQUESTS
    assert finished.iterations == 2
    assert conversation.unanswered_tool_calls() == []


@pytest.mark.parametrize(
    ("finish", "stop"),
    [(FinishReason.LENGTH, StopReason.MAX_TOKENS), (FinishReason.REFUSAL, StopReason.REFUSAL)],
)
async def test_finish_reasons_map_to_stop_reasons(finish: FinishReason, stop: StopReason) -> None:
    _, _, finished = await run(ScriptedProvider([answer("cut", finish)]))
    assert finished.stop_reason is stop


async def test_cancel_during_tools_answers_every_call(autojump_clock: MockClock) -> None:
    provider = ScriptedProvider(
        [calls(ToolCall("fast", "echo", '{"text": "1"}'), ToolCall("slow", "sleep", "{}"))]
    )
    with trio.fail_after(5):
        conversation, events, finished = await run(
            provider, tools=[Echo(), Sleeper()], cancel_after=0.2
        )
    assert finished.stop_reason is StopReason.CANCELLED
    assert events[-1] == finished
    results = {m.tool_call_id: m for m in conversation.messages if m.role is Role.TOOL}
    assert results["fast"].content == "echo: 1" and not results["fast"].is_error
    assert results["slow"].is_error and results["slow"].content.startswith("cancelled")
    assert conversation.unanswered_tool_calls() == []


async def test_cancel_during_stream_keeps_partial_text(autojump_clock: MockClock) -> None:
    provider = ScriptedProvider([answer("partial")], hang_after=0)
    with trio.fail_after(5):
        conversation, _, finished = await run(provider, cancel_after=0.1)
    assert finished.stop_reason is StopReason.CANCELLED
    assert conversation.messages[-1].role is Role.ASSISTANT
    assert conversation.messages[-1].content == "partial"


async def test_provider_error_propagates_with_conversation_valid() -> None:
    call = ToolCall("c", "echo", '{"text": "x"}')
    provider = ScriptedProvider([calls(call), ProviderError("boom", status=500)])
    conversation = Conversation(id="c1")
    with pytest.raises(ProviderError, match="boom"):
        await run(provider, conversation=conversation)
    assert [m.role for m in conversation.messages] == [Role.USER, Role.ASSISTANT, Role.TOOL]


async def test_json_text_tool_call_is_recovered_when_enabled() -> None:
    text = '{"name": "echo", "arguments": {"text": "from text"}}'
    provider = ScriptedProvider([answer(text), answer("done")])
    conversation, _, finished = await run(provider, recover_text_tool_calls=True)
    assert finished.iterations == 2
    assert conversation.messages[1].content is None
    assert conversation.messages[1].tool_calls[0].name == "echo"
    assert conversation.messages[2].content == "echo: from text"


async def test_json_text_stays_text_when_disabled() -> None:
    text = '{"name": "echo", "arguments": {"text": "from text"}}'
    conversation, _, finished = await run(ScriptedProvider([answer(text)]))
    assert finished.iterations == 1
    assert conversation.messages[-1].content == text


async def test_usage_and_cost_are_recorded_on_the_conversation() -> None:
    from openheim.config.model import ModelPrice

    call = ToolCall("c", "echo", '{"text": "x"}')
    conversation = Conversation(id="c1")
    price = ModelPrice(input=1.0, output=2.0)
    _, _, finished = await run(
        ScriptedProvider([calls(call), answer("ok")]), conversation=conversation, price=price
    )
    assert finished.usage == Usage(8, 3)
    assert finished.cost_usd == pytest.approx((8 * 1.0 + 3 * 2.0) / 1e6)
    assert conversation.usage == Usage(8, 3)
    assert conversation.cost_usd == finished.cost_usd
