"""Reasoning in each dialect: how a level is asked for, how thinking goes back in a tool loop
(only to the format that produced it), and the decoders' thinking edge cases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openheim.foundation.models import (
    Message,
    Reasoning,
    ReasoningLevel,
    ToolCall,
    ToolResult,
)
from openheim.providers.anthropic import AnthropicDialect
from openheim.providers.base import ChatRequest, ThinkingDelta
from openheim.providers.gemini import GeminiDialect
from openheim.providers.openai import OpenAIDialect
from tests.providers.streams import anthropic as anthropic_stream
from tests.providers.streams import end_of, text_of, thoughts_of
from tests.providers.streams import gemini as gemini_stream
from tests.providers.streams import openai as openai_stream

CALL = ToolCall("call_1", "read_file", '{"path": "a"}')
SIGNED = {"type": "thinking", "thinking": "Read it first.", "signature": "c2ln"}
REDACTED = {"type": "redacted_thinking", "data": "ZW5j"}
GEMINI_THOUGHT = {"text": "Read it first.", "thought": True, "thoughtSignature": "Z3M="}


def reasoning(format: str, *blocks: dict[str, Any]) -> Reasoning:
    return Reasoning("Read it first.", format, json.dumps(list(blocks)) if blocks else "")


def tool_loop(thought: Reasoning | None) -> tuple[Message, ...]:
    """A prompt, a reply that called a tool after thinking, and the tool's result."""
    return (
        Message.user("show a"),
        Message.assistant("Reading.", (CALL,), thought),
        Message.tool(CALL, ToolResult("contents")),
    )


def request(
    messages: tuple[Message, ...] = (Message.user("hi"),),
    level: ReasoningLevel = ReasoningLevel.OFF,
    max_tokens: int | None = None,
) -> ChatRequest:
    return ChatRequest("m", messages, max_tokens=max_tokens, reasoning=level)


# --- Anthropic ---------------------------------------------------------------------------

ANTHROPIC = AnthropicDialect("https://api.anthropic.com/v1")


def anthropic_body(chat: ChatRequest) -> dict[str, Any]:
    return ANTHROPIC.build_request(chat, "k").json


def test_anthropic_thinking_is_off_unless_asked() -> None:
    body = anthropic_body(request())
    assert "thinking" not in body
    assert body["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("level", "budget"),
    [(ReasoningLevel.LOW, 2048), (ReasoningLevel.MEDIUM, 8192), (ReasoningLevel.HIGH, 24576)],
)
def test_anthropic_budget_is_added_on_top_of_the_answer(level: ReasoningLevel, budget: int) -> None:
    body = anthropic_body(request(level=level))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 4096 + budget
    assert anthropic_body(request(level=level, max_tokens=1000))["max_tokens"] == 1000 + budget


def test_anthropic_thinking_blocks_open_the_assistant_message_of_the_tool_loop() -> None:
    thought = reasoning("anthropic", SIGNED, REDACTED)
    body = anthropic_body(request(tool_loop(thought), ReasoningLevel.HIGH))
    assistant = body["messages"][1]
    assert assistant["content"] == [
        SIGNED,
        REDACTED,
        {"type": "text", "text": "Reading."},
        {"type": "tool_use", "id": "call_1", "name": "read_file", "input": {"path": "a"}},
    ]
    assert body["thinking"]["type"] == "enabled"


def test_anthropic_thinking_blocks_go_back_even_with_thinking_off() -> None:
    body = anthropic_body(request(tool_loop(reasoning("anthropic", SIGNED))))
    assert body["messages"][1]["content"][0] == SIGNED
    assert "thinking" not in body


@pytest.mark.parametrize("format", ["gemini", "openai-chat", ""])
def test_anthropic_drops_thinking_of_another_kind(format: str) -> None:
    body = anthropic_body(request(tool_loop(reasoning(format, GEMINI_THOUGHT, SIGNED))))
    assert [block["type"] for block in body["messages"][1]["content"]] == ["text", "tool_use"]


def test_anthropic_turns_thinking_off_for_a_tool_loop_begun_without_it() -> None:
    """The API would refuse thinking here ("a final assistant message must start with a
    thinking block"); it comes back with the next prompt."""
    body = anthropic_body(request(tool_loop(None), ReasoningLevel.MEDIUM, max_tokens=500))
    assert "thinking" not in body
    assert body["max_tokens"] == 500
    finished = (*tool_loop(None), Message.assistant("Done."), Message.user("next"))
    assert "thinking" in anthropic_body(request(finished, ReasoningLevel.MEDIUM))


# --- OpenAI Chat Completions --------------------------------------------------------------


def test_openai_reasoning_effort_only_when_asked() -> None:
    dialect = OpenAIDialect("https://api.openai.com/v1")
    assert "reasoning_effort" not in dialect.build_request(request(), "k").json
    for level in (ReasoningLevel.LOW, ReasoningLevel.MEDIUM, ReasoningLevel.HIGH):
        assert dialect.build_request(request(level=level), "k").json["reasoning_effort"] == (
            level.value
        )


def test_openai_never_sends_thinking_back() -> None:
    dialect = OpenAIDialect("https://api.openai.com/v1")
    thought = Reasoning("Read it first.", "openai-chat")
    body = dialect.build_request(request(tool_loop(thought), ReasoningLevel.HIGH), "k").json
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "Reading.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path": "a"}'},
            }
        ],
    }


# --- Gemini -----------------------------------------------------------------------------

GEMINI = GeminiDialect("https://generativelanguage.googleapis.com/v1beta")


def test_gemini_thinking_config_from_the_level() -> None:
    assert "generationConfig" not in GEMINI.build_request(request(), "k").json
    body = GEMINI.build_request(request(level=ReasoningLevel.MEDIUM, max_tokens=900), "k").json
    assert body["generationConfig"] == {
        "maxOutputTokens": 900,
        "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True},
    }


def test_gemini_thought_parts_go_back_first_and_only_to_gemini() -> None:
    body = GEMINI.build_request(request(tool_loop(reasoning("gemini", GEMINI_THOUGHT))), "k").json
    parts = body["contents"][1]["parts"]
    assert parts[0] == GEMINI_THOUGHT
    assert parts[1] == {"text": "Reading."}
    assert "functionCall" in parts[2]
    other = GEMINI.build_request(request(tool_loop(reasoning("anthropic", SIGNED))), "k").json
    assert [list(part) for part in other["contents"][1]["parts"]] == [["text"], ["functionCall"]]


# --- decoders -----------------------------------------------------------------------------


def test_anthropic_two_thinking_blocks_read_as_two_paragraphs() -> None:
    a = anthropic_stream
    data = a.sse(
        a.message_start(),
        a.block_start(0, {"type": "thinking", "thinking": ""}),
        a.block_delta(0, type="thinking_delta", thinking="First."),
        a.block_delta(0, type="signature_delta", signature="s1"),
        a.block_stop(0),
        a.block_start(1, {"type": "thinking", "thinking": ""}),
        a.block_delta(1, type="thinking_delta", thinking="Second."),
        a.block_stop(1),  # no signature: shown, but it cannot go back
        a.text_start(2),
        a.text_delta(2, "Answer."),
        a.message_delta("end_turn"),
        a.MESSAGE_STOP,
    )
    events = a.decode(data)
    assert [e for e in events if isinstance(e, ThinkingDelta)] == [
        ThinkingDelta("First."),
        ThinkingDelta("\n\nSecond."),
    ]
    end = end_of(events)
    assert end.text == text_of(events) == "Answer."
    assert end.reasoning == Reasoning(
        "First.\n\nSecond.",
        "anthropic",
        json.dumps([{"type": "thinking", "thinking": "First.", "signature": "s1"}]),
    )


def test_anthropic_redacted_thinking_alone_is_kept_without_text() -> None:
    a = anthropic_stream
    data = a.sse(
        a.message_start(),
        a.block_start(0, REDACTED),
        a.block_stop(0),
        a.text_start(1),
        a.text_delta(1, "Hi."),
        a.message_delta("end_turn"),
        a.MESSAGE_STOP,
    )
    events = a.decode(data)
    assert thoughts_of(events) == ""
    assert end_of(events).reasoning == Reasoning("", "anthropic", json.dumps([REDACTED]))


def test_openai_reasoning_field_of_openrouter_and_ollama() -> None:
    o = openai_stream
    data = o.sse(
        o.chunk({"role": "assistant", "reasoning": "Think."}),
        o.chunk({"content": "Answer."}, "stop"),
        "[DONE]",
    )
    events = o.decode(data)
    assert thoughts_of(events) == "Think."
    assert text_of(events) == "Answer."
    assert end_of(events).reasoning == Reasoning("Think.", "openai-chat")


def test_openai_without_thinking_has_no_reasoning() -> None:
    o = openai_stream
    events = o.decode(o.sse(o.chunk({"content": "a"}, "stop"), "[DONE]"))
    assert end_of(events).reasoning is None


def test_gemini_signed_thought_parts_stay_whole() -> None:
    g = gemini_stream
    data = g.sse(
        g.response({"text": "One ", "thought": True}),
        g.response({"text": "two.", "thought": True, "thoughtSignature": "c2ln"}),
        g.response({"text": "", "thought": True, "thoughtSignature": "bW9yZQ=="}),
        g.response(g.text("Answer."), finish="STOP"),
    )
    events = g.decode(data)
    assert thoughts_of(events) == "One two."
    assert text_of(events) == "Answer."
    end = end_of(events)
    assert end.reasoning is not None
    assert end.reasoning.text == "One two."
    assert json.loads(end.reasoning.blocks) == [
        {"text": "One ", "thought": True},
        {"text": "two.", "thought": True, "thoughtSignature": "c2ln"},
        {"text": "", "thought": True, "thoughtSignature": "bW9yZQ=="},
    ]
