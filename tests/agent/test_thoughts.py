"""Thinking in the loop: shown as ``ThoughtChunk`` events, never counted as answer text, kept
with the assistant message it came with, and the reasoning level passed to every request."""

from __future__ import annotations

import trio

from openheim.agent.events import MessageChunk, StopReason, ThoughtChunk, ToolCallStarted
from openheim.foundation.models import Reasoning, ReasoningLevel, Role, ToolCall, Usage
from openheim.providers.base import FinishReason, StreamEnd, TextDelta, ThinkingDelta
from tests.agent.test_loop import ScriptedProvider, run

SIGNED = Reasoning("Let me think.", "anthropic", '[{"type": "thinking"}]')


async def test_thoughts_are_events_of_their_own_and_stay_out_of_the_answer() -> None:
    call = ToolCall("c-1", "echo", '{"text": "hi"}')
    provider = ScriptedProvider(
        [
            [
                ThinkingDelta("Let me "),
                ThinkingDelta("think."),
                StreamEnd("", (call,), FinishReason.TOOL_CALLS, Usage(5, 1), SIGNED),
            ],
            [
                ThinkingDelta("Echo worked."),
                TextDelta("done"),
                StreamEnd(
                    "done", (), FinishReason.STOP, Usage(3, 2), Reasoning("Echo worked.", "x")
                ),
            ],
        ]
    )
    conversation, events, finished = await run(provider, reasoning=ReasoningLevel.HIGH)
    assert finished.stop_reason is StopReason.END_TURN
    assert events[:3] == [ThoughtChunk("Let me "), ThoughtChunk("think."), ToolCallStarted(call)]
    assert [e for e in events if isinstance(e, MessageChunk)] == [MessageChunk("done")]
    assert ThoughtChunk("Echo worked.") in events
    assistants = [m for m in conversation.messages if m.role is Role.ASSISTANT]
    assert assistants[0].reasoning == SIGNED
    assert assistants[0].content is None
    assert assistants[1].content == "done"
    assert assistants[1].reasoning == Reasoning("Echo worked.", "x")
    assert [r.reasoning for r in provider.requests] == [ReasoningLevel.HIGH] * 2
    # The thinking goes back with its message, for the dialect to send or drop.
    assert provider.requests[1].messages[2].reasoning == SIGNED


async def test_reasoning_is_off_by_default() -> None:
    provider = ScriptedProvider([[TextDelta("a"), StreamEnd("a", (), FinishReason.STOP, None)]])
    await run(provider)
    assert provider.requests[0].reasoning is ReasoningLevel.OFF


async def test_cancel_keeps_partial_thoughts_with_the_partial_answer(
    autojump_clock: trio.abc.Clock,
) -> None:
    provider = ScriptedProvider(
        [
            [
                ThinkingDelta("Half a thought"),
                TextDelta("partial"),
                StreamEnd("partial", (), FinishReason.STOP, None),
            ]
        ],
        hang_after=0,
    )
    conversation, events, finished = await run(provider, cancel_after=1.0)
    assert finished.stop_reason is StopReason.CANCELLED
    last = conversation.messages[-1]
    assert (last.role, last.content) == (Role.ASSISTANT, "partial")
    # Kept for people to read; without a format it never goes back to a provider.
    assert last.reasoning == Reasoning("Half a thought")
    assert last.reasoning.provider_blocks("") == []
    assert ThoughtChunk("Half a thought") in events
