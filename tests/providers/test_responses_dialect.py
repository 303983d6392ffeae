"""The OpenAI Responses dialect: the request it builds (checked by the fake server's rules),
and how its decoder treats reasoning, refusals, cut-off responses and errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import (
    ImagePart,
    Message,
    Prompt,
    Reasoning,
    ReasoningLevel,
    ToolCall,
    ToolDefinition,
    ToolResult,
)
from openheim.providers.base import ChatRequest, FinishReason, ThinkingDelta
from openheim.providers.openai_responses import OpenAIResponsesDialect
from openheim.testing import RecordedRequest, SentImage, sent_images
from openheim.testing.responses_checks import check_body, reasoning_blob
from tests.providers.streams import end_of, text_of, thoughts_of
from tests.providers.streams import responses as r

DIALECT = OpenAIResponsesDialect("https://api.openai.com/v1/")
CALL = ToolCall("call_1", "read_file", '{"path": "a"}')
ITEM = {
    "id": "rs_1",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "Read it first."}],
    "encrypted_content": reasoning_blob("rs_1"),
}
TOOL = ToolDefinition("read_file", "Read a file.", {"type": "object", "properties": {}})


def body(
    messages: tuple[Message, ...] = (Message.user("hi"),),
    level: ReasoningLevel = ReasoningLevel.OFF,
    **options: Any,
) -> dict[str, Any]:
    json_body = DIALECT.build_request(
        ChatRequest("gpt-5", messages, reasoning=level, **options), "k"
    ).json
    assert check_body(json_body) is None, check_body(json_body)
    return json_body


def tool_loop(thought: Reasoning | None, text: str | None = "Reading.") -> tuple[Message, ...]:
    return (
        Message.system("Be brief."),
        Message.user("show a"),
        Message.assistant(text, (CALL,), thought),
        Message.tool(CALL, ToolResult("contents")),
    )


def test_request_is_stateless_and_flat() -> None:
    http = DIALECT.build_request(
        ChatRequest("gpt-5", tool_loop(None), tools=(TOOL,), max_tokens=300), "sk-1"
    )
    assert http.url == "https://api.openai.com/v1/responses"
    assert http.headers["Authorization"] == "Bearer sk-1"
    sent = http.json
    assert check_body(sent) is None
    assert sent["store"] is False
    assert sent["stream"] is True
    assert sent["include"] == ["reasoning.encrypted_content"]
    assert sent["instructions"] == "Be brief."
    assert sent["max_output_tokens"] == 300
    assert "reasoning" not in sent
    assert sent["tools"] == [
        {
            "type": "function",
            "name": "read_file",
            "description": "Read a file.",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        }
    ]
    assert sent["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "show a"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Reading."}],
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "read_file",
            "arguments": '{"path": "a"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "contents"},
    ]


@pytest.mark.parametrize("level", [ReasoningLevel.LOW, ReasoningLevel.MEDIUM, ReasoningLevel.HIGH])
def test_reasoning_level_becomes_effort_with_a_summary(level: ReasoningLevel) -> None:
    assert body(level=level)["reasoning"] == {"effort": level.value, "summary": "auto"}


def test_reasoning_items_go_back_verbatim_before_the_reply() -> None:
    thought = Reasoning("Read it first.", "openai-responses", json.dumps([ITEM]))
    sent = body(tool_loop(thought), ReasoningLevel.HIGH)
    assert sent["input"][1] == ITEM
    assert [item["type"] for item in sent["input"][2:]] == [
        "message",
        "function_call",
        "function_call_output",
    ]


@pytest.mark.parametrize("format", ["anthropic", "gemini", "openai-chat", ""])
def test_thinking_of_another_kind_stays_home(format: str) -> None:
    thought = Reasoning("Read it first.", format, json.dumps([ITEM]))
    sent = body(tool_loop(thought))
    assert "reasoning" not in [item["type"] for item in sent["input"]]
    assert "Read it first." not in json.dumps(sent)


def test_reasoning_alone_is_not_sent_back() -> None:
    """Nothing would follow it, and the API refuses a reasoning item without a follower."""
    thought = Reasoning("Hmm.", "openai-responses", json.dumps([ITEM]))
    messages = (Message.user("a"), Message.assistant(None, (), thought), Message.user("b"))
    assert [item["role"] for item in body(messages)["input"]] == ["user", "user"]


def test_images_are_data_urls_and_tool_images_follow_the_results() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    jpeg = base64.b64encode(b"\xff\xd8 fake").decode()
    shot = ToolCall("call_2", "shot", "{}")
    messages = (
        Message.user(Prompt("What is this?", (ImagePart("image/png", png),))),
        Message.assistant(None, (shot,)),
        Message.tool(shot, ToolResult("screen", images=(ImagePart("image/jpeg", jpeg),))),
    )
    sent = body(messages)
    assert sent["input"][0]["content"][1] == {
        "type": "input_image",
        "image_url": f"data:image/png;base64,{png}",
        "detail": "auto",
    }
    assert [item["type"] for item in sent["input"]] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert sent["input"][3]["content"][0]["text"] == "[1 image from the result of shot (call_2)]"
    recorded = RecordedRequest("POST", "/v1/responses", {}, sent, 0.0)
    assert sent_images(recorded) == [
        SentImage("user", "image/png", png),
        SentImage("user", "image/jpeg", jpeg),
    ]


# --- decoding -----------------------------------------------------------------------------


def test_summary_parts_read_as_paragraphs_and_unencrypted_reasoning_is_not_kept() -> None:
    plain = {"id": "rs_0", "type": "reasoning", "summary": [], "encrypted_content": None}
    events = r.decode(
        r.sse(
            r.summary_delta(0, "First."),
            r.summary_delta(0, "Second.", summary_index=1),
            r.done(0, plain),
            r.text_delta(1, "Answer."),
            r.completed(),
        )
    )
    assert [e for e in events if isinstance(e, ThinkingDelta)] == [
        ThinkingDelta("First."),
        ThinkingDelta("\n\nSecond."),
    ]
    end = end_of(events)
    assert end.text == "Answer."
    assert end.reasoning == Reasoning("First.\n\nSecond.", "openai-responses")
    assert end.usage is None


def test_whole_items_without_deltas_still_show() -> None:
    """A proxy may send only the finished items; their text and summary are not lost."""
    events = r.decode(
        r.sse(
            r.done(0, r.REASONING_ITEM),
            r.done(1, r.message_item(1, "Hello.")),
            r.done(2, r.call_item(2, "call_X", "list_dir", "")),
            r.completed(),
        )
    )
    assert thoughts_of(events) == "**Reading** both files — ünïcode.\n\nThen list."
    end = end_of(events)
    assert end.text == text_of(events) == "Hello."
    assert end.tool_calls == (ToolCall("call_X", "list_dir", "{}"),)
    assert end.finish_reason is FinishReason.TOOL_CALLS


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("max_output_tokens", FinishReason.LENGTH),
        ("content_filter", FinishReason.REFUSAL),
        ("something_new", FinishReason.OTHER),
    ],
)
def test_incomplete_response_keeps_its_reason(reason: str, finish: FinishReason) -> None:
    incomplete = r.event(
        "incomplete", response=r.response("incomplete", incomplete_details={"reason": reason})
    )
    events = r.decode(r.sse(r.text_delta(0, "cut"), incomplete))
    assert end_of(events).finish_reason is finish
    assert end_of(events).text == "cut"


def test_refusal_is_shown_and_ends_as_refusal() -> None:
    refusal = r.event("refusal.delta", item_id="msg_0", output_index=0, delta="I can't.")
    end = end_of(r.decode(r.sse(refusal, r.completed())))
    assert (end.text, end.finish_reason) == ("I can't.", FinishReason.REFUSAL)


def test_error_event_is_a_one_line_provider_error() -> None:
    error = {"type": "error", "code": "server_error", "message": "The server\nhad an error."}
    with pytest.raises(ProviderError) as info:
        r.decode(r.sse(r.text_delta(0, "a"), error))
    assert str(info.value).endswith("server_error: The server had an error.")
    assert info.value.retryable


def test_failed_response_is_a_provider_error() -> None:
    failed = r.event(
        "failed",
        response=r.response(
            "failed", error={"code": "invalid_prompt", "message": "Invalid prompt."}
        ),
    )
    with pytest.raises(ProviderError, match="invalid_prompt: Invalid prompt.") as info:
        r.decode(r.sse(failed))
    assert not info.value.retryable


def test_a_stream_without_its_terminal_event_is_cut_off() -> None:
    with pytest.raises(ProviderError, match="ended unexpectedly before response.completed"):
        r.decode(r.sse(r.text_delta(0, "a")))


def test_http_error_body_and_retry_after() -> None:
    error = DIALECT.parse_error(
        429,
        {"retry-after": "3"},
        b'{"error": {"message": "Rate limit reached", "type": "requests", "code": null}}',
    )
    assert (error.status, error.retryable, error.retry_after) == (429, True, 3.0)
    assert "Rate limit reached" in str(error)
