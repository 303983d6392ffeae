"""The fake LLM server's thinking, in every format: rendered streams decode back to the
script's thoughts with our decoders, non-streamed bodies carry them, and requests that
mishandle thinking are refused as the real APIs refuse them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openheim.providers.anthropic import AnthropicStreamDecoder
from openheim.providers.base import ProviderEvent, StreamDecoder, StreamEnd, ThinkingDelta
from openheim.providers.gemini_stream import GeminiStreamDecoder
from openheim.providers.openai import OpenAIStreamDecoder
from openheim.testing import (
    RecordedRequest,
    RedactedThinking,
    Reply,
    TextChunk,
    ThinkingChunk,
    anthropic_wire,
    gemini_wire,
    openai_wire,
)
from openheim.testing.anthropic_checks import check_body, thinking_signature
from openheim.testing.gemini_checks import check_request
from openheim.testing.script_json import structure_responses, unstructure_responses

THOUGHT = "First the shell, then the answer."
REPLY = Reply.tool_call("execute_command", {"command": "ls"}, thinking=THOUGHT)


def decode(decoder: StreamDecoder, events: tuple[bytes, ...]) -> list[ProviderEvent]:
    out = [event for data in events for event in decoder.feed(data)]
    return out + decoder.close()


def check_decoded(events: list[ProviderEvent]) -> StreamEnd:
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == THOUGHT
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.reasoning is not None and end.reasoning.text == THOUGHT
    assert [call.name for call in end.tool_calls] == ["execute_command"]
    return end


def test_anthropic_stream_signs_its_thinking() -> None:
    reply = Reply((*REPLY.chunks, RedactedThinking("ZGF0YQ==")))
    events = anthropic_wire.stream_events(reply, message_id="m", model="c")
    end = check_decoded(decode(AnthropicStreamDecoder(), events))
    assert end.reasoning is not None
    assert json.loads(end.reasoning.blocks) == [
        {"type": "thinking", "thinking": THOUGHT, "signature": thinking_signature(THOUGHT)},
        {"type": "redacted_thinking", "data": "ZGF0YQ=="},
    ]
    body = anthropic_wire.message_body(reply, message_id="m", model="c")
    assert [block["type"] for block in body["content"]] == [
        "thinking",
        "tool_use",
        "redacted_thinking",
    ]


def test_openai_stream_uses_reasoning_content() -> None:
    events = openai_wire.stream_events(
        REPLY, completion_id="c", model="m", created=0, include_usage=True
    )
    check_decoded(decode(OpenAIStreamDecoder(), events))
    assert b'"reasoning_content"' in b"".join(events)
    body = openai_wire.completion_body(REPLY, completion_id="c", model="m", created=0)
    assert body["choices"][0]["message"]["reasoning_content"] == THOUGHT


def test_gemini_stream_sends_thought_parts() -> None:
    chunks = gemini_wire.response_chunks(REPLY, model="g", sequence=1)
    events = tuple(gemini_wire.sse_event(chunk) for chunk in chunks)
    check_decoded(decode(GeminiStreamDecoder(), events))
    body = gemini_wire.generate_content_body(REPLY, model="g", sequence=1)
    assert body["candidates"][0]["content"]["parts"][0] == {"text": THOUGHT, "thought": True}


def test_thinking_chunks_in_json_scripts() -> None:
    data = [{"type": "reply", "chunks": [{"type": "thinking", "text": "Hm."}, {"text": "Hi."}]}]
    [reply] = structure_responses(data)
    assert isinstance(reply, Reply)
    assert reply.chunks == (ThinkingChunk("Hm."), TextChunk("Hi."))
    assert reply.thinking == "Hm."
    assert structure_responses(unstructure_responses([reply])) == [reply]


# --- validation -------------------------------------------------------------------------------


def anthropic_body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "c", "max_tokens": 4096, "messages": messages, **extra}


SIGNED = {"type": "thinking", "thinking": THOUGHT, "signature": thinking_signature(THOUGHT)}
TOOL_USE = {"type": "tool_use", "id": "t1", "name": "ls", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "t1", "content": "a"}


def loop(*assistant: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": list(assistant)},
        {"role": "user", "content": [RESULT]},
    ]


ON = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (anthropic_body(loop(SIGNED, TOOL_USE), **ON), None),
        (anthropic_body(loop(TOOL_USE)), None),  # thinking off: nothing required
        (anthropic_body(loop(TOOL_USE), **ON), "Expected `thinking` or `redacted_thinking`"),
        (
            anthropic_body(loop({**SIGNED, "thinking": "edited"}, TOOL_USE)),
            "Invalid `signature` in `thinking` block",
        ),
        (
            anthropic_body(loop(TOOL_USE), thinking={"type": "enabled", "budget_tokens": 4096}),
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (
            anthropic_body(loop(TOOL_USE), thinking={"type": "enabled", "budget_tokens": 100}),
            "budget_tokens: Input should be >= 1024",
        ),
    ],
)
def test_anthropic_checks_thinking_as_the_api_does(
    body: dict[str, Any], problem: str | None
) -> None:
    found = check_body(body)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_openai_refuses_reasoning_sent_back_and_unknown_efforts() -> None:
    dialect = openai_wire.OpenAIChatDialect()

    def problem(**body: Any) -> str | None:
        request = RecordedRequest("POST", "/v1/chat/completions", {}, body, 0.0)
        return dialect.check(request)

    messages = [{"role": "user", "content": "hi"}]
    assert problem(model="m", messages=messages, reasoning_effort="high") is None
    assert "reasoning_effort" in (
        problem(model="m", messages=messages, reasoning_effort="max") or ""
    )
    sent_back = [*messages, {"role": "assistant", "content": "a", "reasoning_content": "t"}]
    assert "reasoning_content" in (problem(model="m", messages=sent_back) or "")


def test_gemini_checks_the_thinking_config() -> None:
    def body(thinking: Any) -> dict[str, Any]:
        contents = [{"role": "user", "parts": [{"text": "hi"}]}]
        return {"contents": contents, "generationConfig": {"thinkingConfig": thinking}}

    assert (
        check_request(
            body({"thinkingBudget": 8192, "includeThoughts": True}), require_thought_signatures=True
        )
        is None
    )
    assert "thinking_budget" in (
        check_request(body({"thinkingBudget": 99999}), require_thought_signatures=True) or ""
    )
    assert "include_thoughts" in (
        check_request(body({"includeThoughts": "yes"}), require_thought_signatures=True) or ""
    )
