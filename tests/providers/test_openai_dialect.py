from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, ToolCall, ToolDefinition, ToolResult, Usage
from openheim.providers.base import (
    ChatRequest,
    Dialect,
    FinishReason,
    StreamEnd,
    TextDelta,
)
from openheim.providers.http import parse_retry_after
from openheim.providers.openai import OpenAIDialect, OpenAIStreamDecoder
from tests.providers.streams import end_of, text_of
from tests.providers.streams.openai import (
    EXPECTED_END,
    REALISTIC_STREAM,
    USAGE_CHUNK,
    call_fragment,
    chunk,
    decode,
    sse,
    tool_chunk,
)

# --- decoding -----------------------------------------------------------------------------


def test_realistic_stream() -> None:
    events = decode(REALISTIC_STREAM)
    assert end_of(events) == EXPECTED_END
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("Let me "),
        TextDelta("check both files — ünïcode 😀."),
    ]


def test_multibyte_character_split_between_feeds() -> None:
    data = sse(chunk({"content": "é😀"}, "stop"), "[DONE]")
    cut = data.index("😀".encode()) + 2
    decoder = OpenAIStreamDecoder()
    first = decoder.feed(data[:cut])
    assert first == []
    events = first + decoder.feed(data[cut:]) + decoder.close()
    assert text_of(events) == "é😀"


def test_crlf_split_between_feeds() -> None:
    data = sse(chunk({"content": "hi"}, "stop"), "[DONE]", eol="\r\n")
    cut = data.index(b"\r\n") + 1
    events = decode(data[:cut], data[cut:])
    assert end_of(events) == StreamEnd("hi", (), FinishReason.STOP, None)


def test_comments_keepalives_and_blank_blocks_are_ignored() -> None:
    data = (
        b": ping\n\n"
        + sse(chunk({"content": "a"}))
        + b":\n\n\n\n"
        + sse(chunk({}, "stop"), "[DONE]")
    )
    assert end_of(decode(data)).text == "a"


def test_text_only_stream_without_usage() -> None:
    events = decode(sse(chunk({"content": "Hello"}), chunk({}, "stop"), "[DONE]"))
    assert events == [TextDelta("Hello"), StreamEnd("Hello", (), FinishReason.STOP, None)]


def test_usage_chunk_with_null_choices() -> None:
    usage = {**USAGE_CHUNK, "choices": None}
    del usage["usage"]["prompt_tokens_details"]  # type: ignore[attr-defined]
    end = end_of(decode(sse(chunk({"content": "x"}, "stop"), usage, "[DONE]")))
    assert end.usage == Usage(input_tokens=120, output_tokens=45, cache_read_tokens=0)


def test_reasoning_content_is_not_text() -> None:
    data = sse(
        chunk({"reasoning_content": "thinking..."}),
        chunk({"content": "answer"}, "stop"),
        "[DONE]",
    )
    events = decode(data)
    assert text_of(events) == "answer"
    assert end_of(events).text == "answer"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.REFUSAL),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("function_call", FinishReason.TOOL_CALLS),
        ("something_new", FinishReason.OTHER),
    ],
)
def test_finish_reasons(raw: str, expected: FinishReason) -> None:
    assert end_of(decode(sse(chunk({}, raw), "[DONE]"))).finish_reason is expected


def test_events_after_done_are_ignored() -> None:
    decoder = OpenAIStreamDecoder()
    events = decoder.feed(sse(chunk({"content": "a"}, "stop"), "[DONE]", chunk({"content": "b"})))
    assert end_of(events).text == "a"
    assert decoder.feed(b"data: not json\n\n") == []
    assert decoder.close() == []


# --- endings and errors -------------------------------------------------------------------


def test_missing_done_after_finish_reason_still_ends() -> None:
    events = decode(sse(chunk({"content": "ok"}), chunk({}, "stop")))
    assert end_of(events) == StreamEnd("ok", (), FinishReason.STOP, None)


def test_missing_done_and_finish_reason_is_an_error() -> None:
    decoder = OpenAIStreamDecoder()
    assert decoder.feed(sse(chunk({"content": "partial"}))) == [TextDelta("partial")]
    with pytest.raises(ProviderError, match=r"ended unexpectedly before \[DONE\]") as info:
        decoder.close()
    assert info.value.retryable is False


def test_empty_body_is_an_error() -> None:
    with pytest.raises(ProviderError, match="ended unexpectedly"):
        decode(b"")


def test_malformed_json_is_an_error_quoting_the_data() -> None:
    bad = '{"choices": [' + "x" * 500
    with pytest.raises(ProviderError, match="malformed JSON") as info:
        decode(sse(chunk({"content": "a"}), bad))
    assert info.value.retryable is False
    assert '{"choices": [xxx' in str(info.value)
    assert len(str(info.value)) < 300


def test_non_object_chunk_is_an_error() -> None:
    with pytest.raises(ProviderError, match="unexpected stream chunk"):
        decode(sse("[1, 2]"))


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ({"message": "Rate limit reached", "type": "rate_limit_exceeded"}, True),
        ({"message": "The server is overloaded", "type": "overloaded_error"}, True),
        ({"message": "The server had an error", "type": "server_error"}, True),
        ({"message": "Upstream failed", "code": 503}, True),
        ({"message": "Invalid schema", "type": "invalid_request_error"}, False),
        ("model not loaded", False),
    ],
)
def test_in_stream_error(error: Any, retryable: bool) -> None:
    decoder = OpenAIStreamDecoder()
    decoder.feed(sse(chunk({"content": "a"})))
    with pytest.raises(ProviderError) as info:
        decoder.feed(sse({"error": error}))
    expected = error["message"] if isinstance(error, dict) else error
    assert info.value.message == expected
    assert info.value.retryable is retryable
    assert info.value.provider == "openai"


def test_error_event_with_plain_text_data() -> None:
    with pytest.raises(ProviderError, match="backend crashed"):
        decode(b"event: error\ndata: backend crashed\n\n")


@pytest.mark.parametrize(
    "odd",
    [
        {"id": "x"},  # no choices at all
        {"choices": "nope"},
        {"choices": [None, 3, {"index": 0, "delta": "text?"}]},
        {"choices": [{"index": 0, "delta": {"content": 5, "tool_calls": "no"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [None, {"function": "x"}]}}]},
        {"choices": [{"index": 1, "delta": {"content": "other choice"}}]},
        {"choices": [], "usage": {"prompt_tokens": "many", "completion_tokens": None}},
    ],
)
def test_unexpected_shapes_do_not_crash(odd: dict[str, Any]) -> None:
    events = decode(sse(chunk({"content": "a"}), odd, chunk({}, "stop"), "[DONE]"))
    end = end_of(events)
    assert end.text == "a"
    assert end.finish_reason in (FinishReason.STOP, FinishReason.TOOL_CALLS)


# --- compatible-server quirks -------------------------------------------------------------


def test_whole_call_in_one_chunk_without_type_and_stop() -> None:
    item = {"index": 0, "id": "call_1", "function": {"name": "ls", "arguments": '{"a": 1}'}}
    end = end_of(decode(sse(tool_chunk(item), chunk({}, "stop"), "[DONE]")))
    assert end.tool_calls == (ToolCall("call_1", "ls", '{"a": 1}'),)
    assert end.finish_reason is FinishReason.TOOL_CALLS


def test_length_with_tool_calls_stays_length() -> None:
    fragment = call_fragment(0, id="c", name="f", arguments='{"a"')
    data = sse(tool_chunk(fragment), chunk({}, "length"))
    assert end_of(decode(data + sse("[DONE]"))).finish_reason is FinishReason.LENGTH


def test_missing_ids_are_synthesized_and_unique() -> None:
    data = sse(
        tool_chunk({"index": 0, "function": {"name": "a", "arguments": "{}"}}),
        tool_chunk({"index": 1, "function": {"name": "b", "arguments": ""}}),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    events = decode(data, id_tag="zz")
    assert end_of(events).tool_calls == (
        ToolCall("call_0_zz", "a", "{}"),
        ToolCall("call_1_zz", "b", "{}"),
    )
    # Without an explicit tag, two streams never produce the same ids.
    first, second = OpenAIStreamDecoder(), OpenAIStreamDecoder()
    assert end_of(first.feed(data)).tool_calls != end_of(second.feed(data)).tool_calls


def test_missing_index_uses_position_in_list() -> None:
    items = [
        {"id": "c1", "function": {"name": "a", "arguments": '{"x": 1}'}},
        {"id": "c2", "function": {"name": "b", "arguments": '{"y": 2}'}},
    ]
    end = end_of(decode(sse(tool_chunk(*items), chunk({}, "stop"), "[DONE]")))
    assert end.tool_calls == (ToolCall("c1", "a", '{"x": 1}'), ToolCall("c2", "b", '{"y": 2}'))


def test_repeated_id_on_every_fragment() -> None:
    data = sse(
        tool_chunk(call_fragment(0, id="c1", name="f", arguments='{"k"')),
        tool_chunk(call_fragment(0, id="c1", arguments=': "v"}')),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    events = decode(data)
    assert end_of(events).tool_calls == (ToolCall("c1", "f", '{"k": "v"}'),)


def test_reused_index_with_new_id_is_a_new_call() -> None:
    """Ollama numbers every streamed call 0; a new id must not merge into the old call."""
    data = sse(
        tool_chunk(call_fragment(0, id="c1", name="write", arguments='{"p": "a"}')),
        tool_chunk(call_fragment(0, id="c2", name="write", arguments='{"p": "b"}')),
        chunk({}, "stop"),
        "[DONE]",
    )
    events = decode(data)
    assert end_of(events).tool_calls == (
        ToolCall("c1", "write", '{"p": "a"}'),
        ToolCall("c2", "write", '{"p": "b"}'),
    )


def test_arguments_sent_as_an_object() -> None:
    item = {"index": 0, "id": "c", "function": {"name": "f", "arguments": {"a": [1]}}}
    end = end_of(decode(sse(tool_chunk(item), chunk({}, "tool_calls"), "[DONE]")))
    assert json.loads(end.tool_calls[0].arguments) == {"a": [1]}


def test_empty_arguments_become_an_empty_object() -> None:
    data = sse(tool_chunk(call_fragment(0, id="c", name="now")), chunk({}, "tool_calls"), "[DONE]")
    assert end_of(decode(data)).tool_calls == (ToolCall("c", "now", "{}"),)


# --- requests -----------------------------------------------------------------------------

TOOL = ToolDefinition(
    "read_file", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}}
)


def test_dialect_satisfies_the_protocol() -> None:
    dialect: Dialect = OpenAIDialect("https://api.openai.com/v1")
    assert dialect.name == "openai"
    assert isinstance(dialect.new_decoder(), OpenAIStreamDecoder)


def test_build_request_minimal() -> None:
    dialect = OpenAIDialect("http://localhost:11434/v1/", provider_name="ollama")
    request = dialect.build_request(ChatRequest("llama3", (Message.user("hi"),)), None)
    assert request.method == "POST"
    assert request.url == "http://localhost:11434/v1/chat/completions"
    assert request.headers == {"Content-Type": "application/json", "Accept": "text/event-stream"}
    assert request.json == {
        "model": "llama3",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_build_request_full_conversation() -> None:
    call = ToolCall("call_1", "read_file", '{"path": "a"}')
    messages = (
        Message.system("Be brief."),
        Message.user("Read a"),
        Message.assistant("Reading.", (call,)),
        Message.tool(call, ToolResult("no such file", is_error=True)),
        Message.assistant(None, (ToolCall("call_2", "read_file", ""),)),
        Message.tool(ToolCall("call_2", "read_file"), ToolResult("contents")),
        Message.assistant("Done."),
    )
    dialect = OpenAIDialect("https://api.openai.com/v1")
    request = dialect.build_request(
        ChatRequest("gpt-test", messages, tools=(TOOL,), max_tokens=256), "sk-secret"
    )
    assert request.headers["Authorization"] == "Bearer sk-secret"
    body = request.json
    assert body["max_completion_tokens"] == 256
    assert "max_tokens" not in body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file",
                "parameters": TOOL.parameters,
            },
        }
    ]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Read a"},
        {
            "role": "assistant",
            "content": "Reading.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "no such file"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_2", "content": "contents"},
        {"role": "assistant", "content": "Done."},
    ]
    json.dumps(body)  # the body must be plain JSON


def test_build_request_max_tokens_field_for_compatible_servers() -> None:
    dialect = OpenAIDialect("http://h/v1", "vllm", max_tokens_field="max_tokens")
    body = dialect.build_request(ChatRequest("m", (), max_tokens=10), None).json
    assert body["max_tokens"] == 10
    assert "max_completion_tokens" not in body


def test_unknown_max_tokens_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_tokens_field"):
        OpenAIDialect("http://h/v1", max_tokens_field="max_output_tokens")


def test_empty_tools_and_no_max_tokens_are_omitted() -> None:
    body = OpenAIDialect("http://h").build_request(ChatRequest("m", (), tools=()), "").json
    assert "tools" not in body
    assert "tool_choice" not in body
    assert "max_completion_tokens" not in body


# --- error responses ----------------------------------------------------------------------


def test_parse_error_429_with_retry_after_seconds() -> None:
    body = json.dumps(
        {"error": {"message": "Rate limit reached for gpt-test", "type": "requests"}}
    ).encode()
    error = OpenAIDialect("http://h").parse_error(429, {"retry-after": "20"}, body)
    assert error.status == 429
    assert error.retryable is True
    assert error.retry_after == 20.0
    assert error.message == "Rate limit reached for gpt-test"
    assert error.provider == "openai"
    assert str(error) == "openai provider error: HTTP 429: Rate limit reached for gpt-test"


def test_parse_error_prefers_retry_after_ms_and_ignores_header_case() -> None:
    headers = {"Retry-After": "2", "Retry-After-Ms": "1500"}
    error = OpenAIDialect("http://h").parse_error(429, headers, b"")
    assert error.retry_after == 1.5
    assert error.message == "Too Many Requests"


def test_parse_error_500_with_non_json_body() -> None:
    body = b"<html>\n  <body>Internal   \xff error</body>\n</html>" + b"x" * 1000
    error = OpenAIDialect("http://h", provider_name="lmstudio").parse_error(500, {}, body)
    assert error.retryable is True
    assert error.provider == "lmstudio"
    assert error.message.startswith("<html> <body>Internal \ufffd error</body> </html>xxx")
    assert len(error.message) <= 500
    assert error.retry_after is None


def test_parse_error_400_is_final() -> None:
    body = b'{"error": {"message": "Unrecognized request argument: tool_name", "code": null}}'
    error = OpenAIDialect("http://h").parse_error(400, {}, body)
    assert error.retryable is False
    assert error.message == "Unrecognized request argument: tool_name"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(401, False), (404, False), (408, True), (409, True), (502, True), (529, True)],
)
def test_parse_error_retryable_statuses(status: int, retryable: bool) -> None:
    assert OpenAIDialect("http://h").parse_error(status, {}, b"").retryable is retryable


def test_parse_error_http_date_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    headers = {"Retry-After": "Thu, 01 Jan 2026 12:00:30 GMT"}
    assert OpenAIDialect("http://h").parse_error(503, headers, b"", now=now).retry_after == 30.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", None),
        ("nan", None),
        ("soon", None),
        ("Thu, 01 Jan 2026 12:01:00 GMT", 60.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected
