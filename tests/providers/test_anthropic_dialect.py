from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, Role, ToolCall, ToolDefinition, ToolResult, Usage
from openheim.providers.anthropic import (
    EMPTY_ERROR_RESULT,
    AnthropicDialect,
    AnthropicStreamDecoder,
)
from openheim.providers.base import (
    ChatRequest,
    Dialect,
    FinishReason,
    StreamEnd,
    TextDelta,
)
from tests.providers.streams import end_of
from tests.providers.streams.anthropic import (
    EXPECTED_END,
    MESSAGE_STOP,
    REALISTIC_STREAM,
    block_start,
    block_stop,
    decode,
    json_delta,
    message_delta,
    message_start,
    sse,
    text_delta,
    text_start,
    tool_start,
)

# --- decoding -----------------------------------------------------------------------------


def test_realistic_stream() -> None:
    events = decode(REALISTIC_STREAM)
    assert end_of(events) == EXPECTED_END
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("Let me "),
        TextDelta("check both files — ünïcode 😀."),
    ]


def test_events_are_typed_by_data_even_without_event_lines() -> None:
    events = decode(REALISTIC_STREAM.replace(b"event: ", b": was event "))
    assert end_of(events) == EXPECTED_END


def test_text_only_stream() -> None:
    data = sse(
        message_start(input_tokens=10, output_tokens=1),
        text_start(0),
        text_delta(0, "Hello"),
        block_stop(0),
        message_delta("end_turn", output_tokens=3),
        MESSAGE_STOP,
    )
    assert decode(data) == [
        TextDelta("Hello"),
        StreamEnd("Hello", (), FinishReason.STOP, Usage(input_tokens=10, output_tokens=3)),
    ]


def test_usage_with_cache_tokens_is_normalised() -> None:
    data = sse(
        message_start(
            input_tokens=50,
            cache_creation_input_tokens=200,
            cache_read_input_tokens=1000,
            output_tokens=1,
        ),
        message_delta("end_turn", output_tokens=12),
        MESSAGE_STOP,
    )
    assert end_of(decode(data)).usage == Usage(
        input_tokens=1250, output_tokens=12, cache_read_tokens=1000, cache_write_tokens=200
    )


def test_usage_counts_in_message_delta_win() -> None:
    """Some proxies send no usage in message_start and everything in message_delta."""
    start = message_start()
    del start["message"]["usage"]
    delta = message_delta("end_turn", input_tokens=7, cache_read_input_tokens=3, output_tokens=4)
    usage = end_of(decode(sse(start, delta, MESSAGE_STOP))).usage
    assert usage == Usage(input_tokens=10, output_tokens=4, cache_read_tokens=3)


def test_no_usage_anywhere_gives_none() -> None:
    start = message_start()
    del start["message"]["usage"]
    assert end_of(decode(sse(start, message_delta("end_turn"), MESSAGE_STOP))).usage is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("pause_turn", FinishReason.STOP),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("max_tokens", FinishReason.LENGTH),
        ("refusal", FinishReason.REFUSAL),
        ("model_context_window_exceeded", FinishReason.OTHER),
        (None, FinishReason.STOP),
    ],
)
def test_stop_reasons(raw: str | None, expected: FinishReason) -> None:
    data = sse(message_start(), message_delta(raw), MESSAGE_STOP)
    assert end_of(decode(data)).finish_reason is expected


def test_calls_mean_tool_calls_unless_cut_off() -> None:
    call = (tool_start(0, "toolu_1", "f"), json_delta(0, '{"a": 1}'), block_stop(0))
    ended = sse(message_start(), *call, message_delta("end_turn"), MESSAGE_STOP)
    assert end_of(decode(ended)).finish_reason is FinishReason.TOOL_CALLS
    cut = sse(message_start(), *call, message_delta("max_tokens"), MESSAGE_STOP)
    assert end_of(decode(cut)).finish_reason is FinishReason.LENGTH


def test_tool_without_input_fragments_gets_empty_object() -> None:
    data = sse(
        message_start(),
        tool_start(0, "toolu_1", "now"),
        json_delta(0, ""),
        block_stop(0),
        message_delta("tool_use"),
        MESSAGE_STOP,
    )
    assert end_of(decode(data)).tool_calls == (ToolCall("toolu_1", "now", "{}"),)


def test_whole_input_in_block_start_is_kept() -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": [1]}}
    data = sse(message_start(), block_start(0, block), message_delta("tool_use"), MESSAGE_STOP)
    assert end_of(decode(data)).tool_calls == (ToolCall("toolu_1", "f", '{"x": [1]}'),)


def test_invalid_tool_json_is_kept_raw() -> None:
    data = sse(
        message_start(),
        tool_start(0, "toolu_1", "f"),
        json_delta(0, '{"a": '),
        message_delta("tool_use"),
        MESSAGE_STOP,
    )
    assert end_of(decode(data)).tool_calls == (ToolCall("toolu_1", "f", '{"a": '),)


def test_thinking_and_unknown_blocks_are_not_text() -> None:
    data = sse(
        message_start(),
        block_start(0, {"type": "redacted_thinking", "data": "xyz"}),
        text_delta(0, "secret"),  # odd, but a thinking block's text is never shown
        block_stop(0),
        {"type": "some_future_event", "index": 0},
        block_start(1, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}),
        json_delta(1, '{"query": "x"}'),
        block_stop(1),
        text_start(2),
        text_delta(2, "shown"),
        message_delta("end_turn"),
        MESSAGE_STOP,
    )
    events = decode(data)
    assert events[:-1] == [TextDelta("shown")]
    assert end_of(events).tool_calls == ()


def test_events_after_message_stop_are_ignored() -> None:
    decoder = AnthropicStreamDecoder()
    data = sse(message_start(), text_start(0), text_delta(0, "a"), message_delta("end_turn"))
    events = decoder.feed(data + sse(MESSAGE_STOP, text_delta(0, "b")))
    assert end_of(events).text == "a"
    assert decoder.feed(b"data: not json\n\n") == []
    assert decoder.close() == []


# --- endings and errors -------------------------------------------------------------------


def test_missing_message_stop_after_stop_reason_still_ends() -> None:
    data = sse(message_start(), text_start(0), text_delta(0, "ok"), message_delta("end_turn"))
    assert end_of(decode(data)) == StreamEnd("ok", (), FinishReason.STOP, Usage(25, 1))


def test_truncated_stream_is_an_error() -> None:
    decoder = AnthropicStreamDecoder()
    data = sse(message_start(), text_start(0), text_delta(0, "partial"))
    assert decoder.feed(data + b'event: content_block_delta\ndata: {"ty') == [TextDelta("partial")]
    with pytest.raises(ProviderError, match="ended unexpectedly before message_stop") as info:
        decoder.close()
    assert info.value.retryable is False
    assert info.value.provider == "anthropic"


def test_empty_body_is_an_error() -> None:
    with pytest.raises(ProviderError, match="ended unexpectedly"):
        decode(b"")


def test_malformed_json_is_an_error_quoting_the_data() -> None:
    bad = '{"type": "content_block_delta", ' + "x" * 500
    with pytest.raises(ProviderError, match="malformed JSON") as info:
        decode(sse(message_start(), text_start(0)) + f"event: x\ndata: {bad}\n\n".encode())
    assert info.value.retryable is False
    assert '{"type": "content_block_delta", xxx' in str(info.value)
    assert len(str(info.value)) < 300


def test_non_object_event_is_an_error() -> None:
    with pytest.raises(ProviderError, match="unexpected stream event"):
        decode(sse("[1, 2]"))


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        ("overloaded_error", True),
        ("api_error", True),
        ("rate_limit_error", True),
        ("invalid_request_error", False),
    ],
)
def test_error_event_mid_stream(kind: str, retryable: bool) -> None:
    decoder = AnthropicStreamDecoder()
    assert decoder.feed(sse(message_start(), text_start(0), text_delta(0, "a"))) == [TextDelta("a")]
    error = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
    with pytest.raises(ProviderError) as info:
        decoder.feed(sse(error))
    assert info.value.message == f"{kind}: Overloaded"
    assert info.value.retryable is retryable
    assert info.value.provider == "anthropic"
    assert info.value.status is None


def test_error_event_with_plain_text_data() -> None:
    with pytest.raises(ProviderError, match="backend crashed"):
        decode(b"event: error\ndata: backend crashed\n\n")


@pytest.mark.parametrize(
    "odd",
    [
        {"no": "type"},
        {"type": 5},
        {"type": "message_start", "message": "nope"},
        {"type": "message_start", "message": {"usage": {"input_tokens": "many"}}},
        {"type": "content_block_start"},
        {"type": "content_block_start", "index": 9, "content_block": "x"},
        {"type": "content_block_start", "index": 8, "content_block": {"type": "tool_use"}},
        {"type": "content_block_delta", "index": 0, "delta": None},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 3}},
        {"type": "content_block_delta", "index": 77, "delta": {"type": "input_json_delta"}},
        {"type": "content_block_delta", "index": True, "delta": {"type": "text_delta"}},
        {"type": "message_delta", "delta": "x", "usage": [1]},
        {"type": "content_block_stop", "index": None},
    ],
)
def test_unexpected_shapes_do_not_crash(odd: dict[str, Any]) -> None:
    start = (message_start(), text_start(0), text_delta(0, "a"))
    data = sse(*start, odd, message_delta("end_turn"), MESSAGE_STOP)
    end = end_of(decode(data))
    assert end.text == "a"
    assert end.finish_reason in (FinishReason.STOP, FinishReason.TOOL_CALLS)


def test_tool_block_without_id_gets_a_synthesized_one() -> None:
    block = {"type": "tool_use", "name": "f", "input": {}}
    data = sse(message_start(), block_start(0, block), message_delta("tool_use"), MESSAGE_STOP)
    assert end_of(decode(data, id_tag="zz")).tool_calls == (ToolCall("toolu_0_zz", "f", "{}"),)


# --- requests -----------------------------------------------------------------------------

TOOL = ToolDefinition(
    "read_file", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}}
)
DIALECT = AnthropicDialect("https://api.anthropic.com/v1/")


def test_dialect_satisfies_the_protocol() -> None:
    dialect: Dialect = DIALECT
    assert dialect.name == "anthropic"
    assert isinstance(dialect.new_decoder(), AnthropicStreamDecoder)
    assert AnthropicDialect("http://h", provider_name="claude").name == "claude"


def test_build_request_minimal() -> None:
    request = DIALECT.build_request(ChatRequest("claude-x", (Message.user("hi"),)), None)
    assert request.method == "POST"
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers == {
        "content-type": "application/json",
        "accept": "text/event-stream",
        "anthropic-version": "2023-06-01",
    }
    assert request.json == {
        "model": "claude-x",
        "max_tokens": 4096,
        "stream": True,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_build_request_headers_with_key_and_version() -> None:
    dialect = AnthropicDialect("http://h/v1", api_version="2099-01-01", default_max_tokens=99)
    request = dialect.build_request(ChatRequest("m", (Message.user("hi"),)), "sk-ant-secret")
    assert request.headers["x-api-key"] == "sk-ant-secret"
    assert request.headers["anthropic-version"] == "2099-01-01"
    assert "authorization" not in {key.lower() for key in request.headers}
    assert request.json["max_tokens"] == 99
    assert "sk-ant-secret" not in repr(request)
    empty_key = dialect.build_request(ChatRequest("m", (Message.user("hi"),)), "")
    assert "x-api-key" not in empty_key.headers


def test_build_request_full_conversation() -> None:
    call_1 = ToolCall("toolu_1", "read_file", '{"path": "a"}')
    call_2 = ToolCall("toolu_2", "read_file", '{"path": "b"}')
    call_3 = ToolCall("toolu_3", "read_file", '{"path": ')  # the model's invalid JSON
    messages = (
        Message.system("Be brief."),
        Message.user("Read a and b"),
        Message.assistant("Reading.", (call_1, call_2)),
        Message.tool(call_1, ToolResult("no such file", is_error=True)),
        Message.tool(call_2, ToolResult("contents of b")),
        Message.user("Also c, please."),
        Message.assistant(None, (call_3,)),
        Message.tool(call_3, ToolResult("arguments are not valid JSON", is_error=True)),
        Message.system("Answer in English."),
        Message.assistant("Done."),
    )
    request = DIALECT.build_request(
        ChatRequest("claude-x", messages, tools=(TOOL,), max_tokens=256), "k"
    )
    body = request.json
    assert body["max_tokens"] == 256
    assert body["system"] == "Be brief.\n\nAnswer in English."
    assert body["tools"] == [
        {"name": "read_file", "description": "Read a file", "input_schema": TOOL.parameters}
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Read a and b"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a"}},
                {"type": "tool_use", "id": "toolu_2", "name": "read_file", "input": {"path": "b"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "no such file",
                    "is_error": True,
                },
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "contents of b"},
                {"type": "text", "text": "Also c, please."},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_3", "name": "read_file", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_3",
                    "content": "arguments are not valid JSON",
                    "is_error": True,
                }
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
    ]
    json.dumps(body)  # the body must be plain JSON


def test_no_system_and_no_tools_are_omitted() -> None:
    messages = (Message.system("   "), Message.user("hi"))
    body = DIALECT.build_request(ChatRequest("m", messages, tools=()), None).json
    assert "system" not in body
    assert "tools" not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_no_empty_text_blocks() -> None:
    call = ToolCall("toolu_1", "now", "")
    messages = (
        Message.user("first"),
        Message.assistant(""),  # an empty answer: it adds nothing, so the users merge
        Message.user(""),
        Message.user("second"),
        Message.assistant("  \n", (call,)),
        Message.tool(call, ToolResult("")),
        Message(Role.USER, None),
    )
    body = DIALECT.build_request(ChatRequest("m", messages), None).json
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
    ]


def test_empty_failed_tool_result_still_says_it_failed() -> None:
    call = ToolCall("toolu_1", "f", "{}")
    messages = (
        Message.user("go"),
        Message.assistant(None, (call,)),
        Message.tool(call, ToolResult("", is_error=True)),
    )
    block = DIALECT.build_request(ChatRequest("m", messages), None).json["messages"][2]
    assert block["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": EMPTY_ERROR_RESULT,
            "is_error": True,
        }
    ]


def test_tool_results_go_before_text_in_a_merged_user_turn() -> None:
    call = ToolCall("toolu_1", "f", "[1, 2]")  # valid JSON but not an object: input {}
    messages = (
        Message.user("go"),
        Message.assistant(None, (call,)),
        Message.user("interjection"),
        Message.tool(call, ToolResult("ok")),
    )
    body = DIALECT.build_request(ChatRequest("m", messages), None).json
    assert body["messages"][1]["content"][0]["input"] == {}
    assert [block["type"] for block in body["messages"][2]["content"]] == ["tool_result", "text"]


def test_first_assistant_message_is_not_fixed_up() -> None:
    body = DIALECT.build_request(ChatRequest("m", (Message.assistant("hi"),)), None).json
    assert body["messages"] == [{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]


# --- error responses ----------------------------------------------------------------------


def error_json(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def test_parse_error_529_overloaded() -> None:
    error = DIALECT.parse_error(529, {}, error_json("overloaded_error", "Overloaded"))
    assert error.status == 529
    assert error.retryable is True
    assert error.retry_after is None
    assert error.message == "overloaded_error: Overloaded"
    assert str(error) == "anthropic provider error: HTTP 529: overloaded_error: Overloaded"


def test_parse_error_429_with_retry_after() -> None:
    body = error_json("rate_limit_error", "Number of request tokens has exceeded your limit")
    error = DIALECT.parse_error(429, {"Retry-After": "17"}, body)
    assert error.retryable is True
    assert error.retry_after == 17.0
    assert error.message == "rate_limit_error: Number of request tokens has exceeded your limit"


def test_parse_error_400_is_final() -> None:
    body = error_json("invalid_request_error", "max_tokens: Field required")
    error = DIALECT.parse_error(400, {}, body)
    assert error.retryable is False
    assert error.message == "invalid_request_error: max_tokens: Field required"
    assert error.provider == "anthropic"


def test_parse_error_without_anthropic_json() -> None:
    error = DIALECT.parse_error(502, {}, b"<html>Bad   gateway</html>")
    assert error.retryable is True
    assert error.message == "<html>Bad gateway</html>"
    assert DIALECT.parse_error(401, {}, b"").message == "Unauthorized"


def test_parse_error_http_date_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    headers = {"retry-after": "Thu, 01 Jan 2026 12:00:30 GMT"}
    assert DIALECT.parse_error(529, headers, b"", now=now).retry_after == 30.0
