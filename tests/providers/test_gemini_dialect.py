from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, Role, ToolCall, ToolDefinition, ToolResult, Usage
from openheim.providers.base import (
    ChatRequest,
    Dialect,
    FinishReason,
    StreamEnd,
    TextDelta,
)
from openheim.providers.gemini import GeminiDialect
from openheim.providers.gemini_schema import to_gemini_schema
from openheim.providers.gemini_stream import GeminiStreamDecoder
from tests.providers.streams import end_of
from tests.providers.streams.gemini import (
    EXPECTED_END,
    FINAL_USAGE,
    REALISTIC_STREAM,
    call,
    decode,
    response,
    sse,
    text,
)

BASE = "https://generativelanguage.googleapis.com/v1beta"


# --- decoding -----------------------------------------------------------------------------


def test_realistic_stream() -> None:
    events = decode(REALISTIC_STREAM)
    assert end_of(events) == EXPECTED_END
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("Let me "),
        TextDelta("check both files — ünïcode 😀."),
    ]


def test_lf_framing_and_keepalives() -> None:
    data = b": keep-alive\n\n" + sse(response(text("hi"), finish="STOP"), eol="\n")
    assert decode(data) == [TextDelta("hi"), StreamEnd("hi", (), FinishReason.STOP, None)]


def test_text_and_finish_in_one_chunk() -> None:
    events = decode(sse(response(text("Hello"), finish="STOP", usage=FINAL_USAGE)))
    assert events[0] == TextDelta("Hello")
    end = end_of(events)
    assert (end.text, end.finish_reason, end.tool_calls) == ("Hello", FinishReason.STOP, ())


def test_parallel_call_ids_are_unique_across_streams() -> None:
    data = sse(response(call("a", {}), call("b", {"x": 1}), finish="STOP"))
    first, second = decode(data, id_tag="aa"), decode(data, id_tag="bb")
    assert [c.id for c in end_of(first).tool_calls] == ["call_aa_0", "call_aa_1"]
    assert [c.id for c in end_of(second).tool_calls] == ["call_bb_0", "call_bb_1"]
    # Without an explicit tag, two streams never produce the same ids.
    one, two = GeminiStreamDecoder(), GeminiStreamDecoder()
    ids_one = [c.id for c in end_of(one.feed(data) + one.close()).tool_calls]
    ids_two = [c.id for c in end_of(two.feed(data) + two.close()).tool_calls]
    assert len(set(ids_one)) == 2 and not set(ids_one) & set(ids_two)


def test_calls_in_separate_chunks_keep_arrival_order_and_given_ids() -> None:
    data = sse(
        response(call("first", {"n": 1}, thoughtSignature="sig")),
        response({"functionCall": {"name": "second", "args": {"n": 2}, "id": "fc-77"}}),
        response(finish="STOP"),
    )
    end = end_of(decode(data))
    assert end.tool_calls == (
        ToolCall("call_t_0", "first", '{"n": 1}', signature="sig"),
        ToolCall("fc-77", "second", '{"n": 2}'),
    )
    assert end.finish_reason is FinishReason.TOOL_CALLS


def test_call_without_args_has_empty_object_arguments() -> None:
    data = sse(response({"functionCall": {"name": "now"}}, finish="STOP"))
    assert end_of(decode(data)).tool_calls == (ToolCall("call_t_0", "now", "{}"),)


def test_usage_is_cumulative_and_the_latest_wins() -> None:
    data = sse(
        response(text("a"), usage={"promptTokenCount": 50, "totalTokenCount": 50}),
        response(text("b"), finish="STOP", usage={**FINAL_USAGE, "cachedContentTokenCount": 0}),
        # Usage may follow in a chunk of its own; it still counts.
        {"usageMetadata": FINAL_USAGE, "modelVersion": "gemini-2.5-flash"},
    )
    assert end_of(decode(data)).usage == Usage(120, 45, cache_read_tokens=100)


def test_usage_without_thoughts_or_cache() -> None:
    usage = {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10}
    end = end_of(decode(sse(response(text("x"), finish="STOP", usage=usage))))
    assert end.usage == Usage(input_tokens=7, output_tokens=3)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("STOP", FinishReason.STOP),
        ("MAX_TOKENS", FinishReason.LENGTH),
        ("SAFETY", FinishReason.REFUSAL),
        ("RECITATION", FinishReason.REFUSAL),
        ("BLOCKLIST", FinishReason.REFUSAL),
        ("PROHIBITED_CONTENT", FinishReason.REFUSAL),
        ("SPII", FinishReason.REFUSAL),
        ("IMAGE_SAFETY", FinishReason.REFUSAL),
        ("LANGUAGE", FinishReason.OTHER),
        ("FINISH_REASON_UNSPECIFIED", FinishReason.OTHER),
    ],
)
def test_finish_reasons(raw: str, expected: FinishReason) -> None:
    assert end_of(decode(sse(response(finish=raw)))).finish_reason is expected


def test_safety_stop_without_content() -> None:
    ratings = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]
    data = sse(
        response(text("Here is how")),
        {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}]},
    )
    end = end_of(decode(data))
    assert (end.text, end.finish_reason) == ("Here is how", FinishReason.REFUSAL)


def test_max_tokens_with_calls_stays_length() -> None:
    end = end_of(decode(sse(response(call("f", {"a": 1}), finish="MAX_TOKENS"))))
    assert end.finish_reason is FinishReason.LENGTH and len(end.tool_calls) == 1


# --- endings and errors -------------------------------------------------------------------


def test_blocked_prompt_is_a_final_error() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "no\nway"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    }
    with pytest.raises(ProviderError, match="prompt blocked by Gemini: PROHIBITED_CONTENT") as info:
        decode(sse(blocked))
    assert info.value.retryable is False
    assert info.value.message == "prompt blocked by Gemini: PROHIBITED_CONTENT (no way)"
    assert info.value.provider == "gemini"


def test_malformed_function_call_is_a_final_error() -> None:
    chunk = {
        "candidates": [
            {
                "finishReason": "MALFORMED_FUNCTION_CALL",
                "finishMessage": "Malformed function call: print(x",
                "index": 0,
            }
        ]
    }
    with pytest.raises(ProviderError, match="malformed function call: Malformed") as info:
        decode(sse(chunk))
    assert info.value.retryable is False


@pytest.mark.parametrize(
    ("error", "retryable", "message"),
    [
        (
            {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"},
            True,
            "UNAVAILABLE: The model is overloaded.",
        ),
        ({"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}, True, None),
        ({"message": "boom", "status": "INTERNAL"}, True, "INTERNAL: boom"),
        ({"code": 500, "message": "Internal error"}, True, "Internal error"),
        ({"code": 400, "message": "Bad", "status": "INVALID_ARGUMENT"}, False, None),
        ("plain text error", False, "plain text error"),
    ],
)
def test_in_stream_error(error: Any, retryable: bool, message: str | None) -> None:
    decoder = GeminiStreamDecoder()
    assert decoder.feed(sse(response(text("a")))) == [TextDelta("a")]
    with pytest.raises(ProviderError) as info:
        decoder.feed(sse({"error": error}))
    assert info.value.retryable is retryable
    if message is not None:
        assert info.value.message == message


def test_in_stream_error_with_retry_info() -> None:
    error = {
        "code": 429,
        "message": "Quota exceeded",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
    }
    with pytest.raises(ProviderError) as info:
        decode(sse({"error": error}))
    assert info.value.retry_after == 7.0


def test_truncated_stream_is_an_error() -> None:
    decoder = GeminiStreamDecoder()
    assert decoder.feed(sse(response(text("partial")))) == [TextDelta("partial")]
    with pytest.raises(ProviderError, match="ended unexpectedly before a finishReason") as info:
        decoder.close()
    assert info.value.retryable is False


def test_event_without_terminating_blank_line_is_dropped() -> None:
    data = sse(response(text("a"))) + b'data: {"candidates": [{"finishReason": "STOP"}]}'
    with pytest.raises(ProviderError, match="ended unexpectedly"):
        decode(data)


def test_empty_body_is_an_error() -> None:
    with pytest.raises(ProviderError, match="ended unexpectedly"):
        decode(b"")


def test_malformed_json_is_an_error_quoting_the_data() -> None:
    bad = '{"candidates": [' + "x" * 500
    with pytest.raises(ProviderError, match="malformed JSON") as info:
        decode(sse(response(text("a")), bad))
    assert info.value.retryable is False
    assert '{"candidates": [xxx' in str(info.value)
    assert len(str(info.value)) < 300


def test_non_object_chunk_is_an_error() -> None:
    with pytest.raises(ProviderError, match="unexpected stream chunk"):
        decode(sse("[1, 2]"))


def test_close_twice_and_feed_after_close() -> None:
    decoder = GeminiStreamDecoder()
    events = decoder.feed(sse(response(text("a"), finish="STOP"))) + decoder.close()
    assert end_of(events).text == "a"
    assert decoder.close() == []
    assert decoder.feed(b"data: junk\n\n") == []


@pytest.mark.parametrize(
    "odd",
    [
        {"modelVersion": "x"},  # no candidates at all
        {"candidates": "nope"},
        {"candidates": [None, 3, {"index": 0, "content": "text?"}]},
        {"candidates": [{"index": 0, "content": {"parts": [None, {"text": 5}, {"x": 1}]}}]},
        {"candidates": [{"index": 0, "content": {"parts": "no"}}]},
        {"candidates": [{"index": 1, "content": {"parts": [{"text": "other candidate"}]}}]},
        {"candidates": [], "usageMetadata": {"promptTokenCount": "many"}},
        {"candidates": [{"content": {"parts": [{"executableCode": {"code": "1"}}]}}]},
        {"promptFeedback": {"safetyRatings": []}},  # feedback without a block
    ],
)
def test_unexpected_shapes_do_not_crash(odd: dict[str, Any]) -> None:
    events = decode(sse(response(text("a")), odd, response(finish="STOP")))
    end = end_of(events)
    assert end.text == "a"
    assert end.finish_reason is FinishReason.STOP


# --- requests -----------------------------------------------------------------------------

TOOL = ToolDefinition(
    "read_file",
    "Read a file",
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Where"}},
        "required": ["path"],
        "additionalProperties": False,
    },
)


def test_dialect_satisfies_the_protocol() -> None:
    dialect: Dialect = GeminiDialect(BASE)
    assert dialect.name == "gemini"
    assert isinstance(dialect.new_decoder(), GeminiStreamDecoder)
    assert GeminiDialect(BASE, provider_name="google").name == "google"


def test_build_request_minimal() -> None:
    dialect = GeminiDialect(BASE + "/")
    request = dialect.build_request(ChatRequest("gemini-2.5-flash", (Message.user("hi"),)), None)
    assert request.method == "POST"
    assert request.url == f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert request.headers == {"content-type": "application/json", "accept": "text/event-stream"}
    assert request.json == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_key_goes_in_a_header_never_the_url() -> None:
    request = GeminiDialect(BASE).build_request(ChatRequest("m", ()), "AIza-secret")
    assert request.headers["x-goog-api-key"] == "AIza-secret"
    assert "AIza" not in request.url and "key=" not in request.url
    assert "AIza" not in repr(request)


@pytest.mark.parametrize(
    ("model", "segment"),
    [
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("odd/name:x y", "odd%2Fname%3Ax%20y"),
    ],
)
def test_model_is_one_quoted_path_segment(model: str, segment: str) -> None:
    url = GeminiDialect(BASE).build_request(ChatRequest(model, ()), None).url
    assert url == f"{BASE}/models/{segment}:streamGenerateContent?alt=sse"


def test_build_request_full_conversation() -> None:
    first = ToolCall("call_x_0", "read_file", '{"path": "a"}', signature="c2lnLWE=")
    second = ToolCall("call_x_1", "read_file", '{"path": "b"}')
    broken = ToolCall("call_y_0", "read_file", '{"path": ', signature="c2lnLWI=")
    messages = (
        Message.system("Be brief."),
        Message.user("Read a and b"),
        Message.assistant("Reading.", (first, second)),
        Message.tool(first, ToolResult("no such file", is_error=True)),
        Message.tool(second, ToolResult("contents of b")),
        Message.assistant(None, (broken,)),
        Message.tool(broken, ToolResult("arguments are not valid JSON", is_error=True)),
        Message.user("Stop."),
        Message.system("Answer in English."),
        Message.assistant("Done."),
    )
    request = GeminiDialect(BASE).build_request(
        ChatRequest("gemini-3-pro", messages, tools=(TOOL,), max_tokens=256), "k"
    )
    body = request.json
    assert body["systemInstruction"] == {
        "parts": [{"text": "Be brief."}, {"text": "Answer in English."}]
    }
    assert body["generationConfig"] == {"maxOutputTokens": 256}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Read a and b"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Reading."},
                {
                    "functionCall": {"name": "read_file", "args": {"path": "a"}},
                    "thoughtSignature": "c2lnLWE=",
                },
                {"functionCall": {"name": "read_file", "args": {"path": "b"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "read_file",
                        "response": {"error": "no such file"},
                    }
                },
                {
                    "functionResponse": {
                        "name": "read_file",
                        "response": {"result": "contents of b"},
                    }
                },
            ],
        },
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "read_file", "args": {}}, "thoughtSignature": "c2lnLWI="}
            ],
        },
        {
            "role": "user",  # the tool result and the next prompt merge into one user content
            "parts": [
                {
                    "functionResponse": {
                        "name": "read_file",
                        "response": {"error": "arguments are not valid JSON"},
                    }
                },
                {"text": "Stop."},
            ],
        },
        {"role": "model", "parts": [{"text": "Done."}]},
    ]
    json.dumps(body)  # the body must be plain JSON


def test_signature_round_trips_from_stream_to_request() -> None:
    data = sse(response(call("ls", {"p": "."}, thoughtSignature="opaque+/=="), finish="STOP"))
    calls = end_of(decode(data)).tool_calls
    messages = (Message.user("go"), Message.assistant(None, calls))
    body = GeminiDialect(BASE).build_request(ChatRequest("m", messages), None).json
    assert body["contents"][1]["parts"] == [
        {"functionCall": {"name": "ls", "args": {"p": "."}}, "thoughtSignature": "opaque+/=="}
    ]


def test_tool_result_name_falls_back_to_the_call() -> None:
    call_ = ToolCall("c1", "grep", "{}")
    result = Message(Role.TOOL, "x", tool_call_id="c1")  # stored without ``tool_name``
    messages = (Message.user("q"), Message.assistant(None, (call_,)), result)
    contents = GeminiDialect(BASE).build_request(ChatRequest("m", messages), None).json["contents"]
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "grep"


def test_empty_messages_and_parts_are_left_out() -> None:
    messages = (Message.system(""), Message.user(""), Message.user("hi"), Message.assistant(""))
    body = GeminiDialect(BASE).build_request(ChatRequest("m", messages), None).json
    assert body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_tools_declared_with_reduced_schema() -> None:
    no_args = ToolDefinition("now", "The time")
    body = GeminiDialect(BASE).build_request(ChatRequest("m", (), tools=(TOOL, no_args)), "").json
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "read_file",
                    "description": "Read a file",
                    "parameters": {
                        "type": "object",
                        "properties": {"path": {"type": "string", "description": "Where"}},
                        "required": ["path"],
                    },
                },
                {"name": "now", "description": "The time"},  # no parameters: left out
            ]
        }
    ]
    assert "generationConfig" not in body and "systemInstruction" not in body


def test_empty_tools_are_omitted() -> None:
    body = GeminiDialect(BASE).build_request(ChatRequest("m", (), tools=()), None).json
    assert "tools" not in body


# --- schema reduction ---------------------------------------------------------------------


def test_schema_nested_properties_items_and_nullable() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": ["string", "null"], "default": None, "examples": ["x"]},
            "tags": {
                "type": "array",
                "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                "minItems": 1,
                "uniqueItems": True,
            },
            "meta": {"type": "object", "additionalProperties": {"type": "string"}},
            "count": {"type": "integer", "minimum": 0, "exclusiveMaximum": 10, "format": "int32"},
            "when": {"type": "string", "format": "date-time"},
            "url": {"type": "string", "format": "uri", "pattern": "^https://"},
        },
        "required": ["name", "ghost"],
    }
    assert to_gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "nullable": True},
            "tags": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "properties": {"k": {"type": "string"}}},
            },
            "meta": {"type": "object"},
            "count": {"type": "integer", "minimum": 0, "format": "int32"},
            "when": {"type": "string", "format": "date-time"},
            "url": {"type": "string", "pattern": "^https://"},
        },
        "required": ["name"],
    }


def test_schema_refs_are_inlined_and_cycles_cut() -> None:
    schema = {
        "type": "object",
        "properties": {
            "node": {"$ref": "#/$defs/Node", "description": "The root"},
            "old": {"$ref": "#/definitions/Old"},
            "remote": {"$ref": "https://example.com/schema.json"},
        },
        "$defs": {
            "Node": {
                "type": "object",
                "description": "A node",
                "properties": {"child": {"$ref": "#/$defs/Node"}, "v": {"type": "number"}},
            }
        },
        "definitions": {"Old": {"type": "boolean"}},
    }
    assert to_gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "node": {
                "type": "object",
                "description": "The root",
                "properties": {"child": {"type": "object"}, "v": {"type": "number"}},
            },
            "old": {"type": "boolean"},
            "remote": {"type": "object"},
        },
    }


def test_schema_combinators() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pydantic_optional": {
                "anyOf": [{"type": "integer"}, {"type": "null"}],
                "default": None,
                "title": "Count",
            },
            "union": {"oneOf": [{"type": "string"}, {"type": "integer"}], "description": "u"},
            "multi": {"type": ["string", "integer", "null"]},
            "merged": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "string"}}, "required": ["b"]},
                ]
            },
        },
        "anyOf": [{"required": ["union"]}, {"required": ["multi"]}],
    }
    assert to_gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "pydantic_optional": {"type": "integer", "title": "Count", "nullable": True},
            "union": {"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "u"},
            "multi": {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True},
            "merged": {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "required": ["a", "b"],
            },
        },
    }


def test_schema_enums_and_const() -> None:
    schema = {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["r", "w", None]},
            "level": {"type": "integer", "enum": [1, 2, 3], "description": "Level."},
            "kind": {"const": "file"},
            "answer": {"const": 42},
        },
    }
    assert to_gemini_schema(schema)["properties"] == {
        "mode": {"type": "string", "enum": ["r", "w"], "nullable": True},
        "level": {"type": "integer", "description": "Level. One of: 1, 2, 3."},
        "kind": {"type": "string", "enum": ["file"]},
        "answer": {"type": "string", "description": "One of: 42."},
    }


def test_schema_missing_types_are_inferred() -> None:
    schema = {
        "properties": {
            "anything": {"description": "Any value"},
            "list": {"items": {"type": "string"}},
            "bare_array": {"type": "array"},
            "bounded": {"minimum": 1},
            "choice": {"enum": ["a", "b"]},
            "nothing": True,
        }
    }
    assert to_gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "anything": {"type": "string", "description": "Any value"},
            "list": {"type": "array", "items": {"type": "string"}},
            "bare_array": {"type": "array", "items": {"type": "string"}},
            "bounded": {"type": "number", "minimum": 1},
            "choice": {"type": "string", "enum": ["a", "b"]},
            "nothing": {"type": "string"},
        },
    }


def test_schema_object_without_properties_and_odd_input() -> None:
    assert to_gemini_schema({"type": "object"}) == {"type": "object"}
    assert to_gemini_schema({"type": "object", "properties": {}}) == {
        "type": "object",
        "properties": {},
    }
    assert to_gemini_schema("nonsense") == {"type": "object"}  # type: ignore[arg-type]


# --- error responses ----------------------------------------------------------------------


def google_error(code: int, message: str, status: str, **extra: Any) -> str:
    return json.dumps({"error": {"code": code, "message": message, "status": status, **extra}})


def test_parse_error_429_with_retry_info() -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"},
    ]
    body = google_error(
        429, "You exceeded your current quota.", "RESOURCE_EXHAUSTED", details=details
    )
    error = GeminiDialect(BASE).parse_error(429, {}, body.encode())
    assert error.status == 429
    assert error.retryable is True
    assert error.retry_after == 13.0
    assert error.message == "RESOURCE_EXHAUSTED: You exceeded your current quota."
    assert str(error) == (
        "gemini provider error: HTTP 429: RESOURCE_EXHAUSTED: You exceeded your current quota."
    )


@pytest.mark.parametrize(("delay", "seconds"), [("1.5s", 1.5), ("0s", 0.0), ("soon", None)])
def test_parse_error_fractional_and_bad_retry_delays(delay: str, seconds: float | None) -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
    body = google_error(503, "overloaded", "UNAVAILABLE", details=details).encode()
    assert GeminiDialect(BASE).parse_error(503, {}, body).retry_after == seconds


def test_parse_error_header_wins_over_retry_info() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}]
    body = google_error(429, "quota", "RESOURCE_EXHAUSTED", details=details).encode()
    error = GeminiDialect(BASE).parse_error(429, {"Retry-After": "2"}, body)
    assert error.retry_after == 2.0
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    dated = {"retry-after": "Thu, 01 Jan 2026 12:00:30 GMT"}
    assert GeminiDialect(BASE).parse_error(503, dated, b"", now=now).retry_after == 30.0


def test_parse_error_400_is_final_and_one_line() -> None:
    message = (
        "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties: "
        "should be non-empty for OBJECT type\n"
    )
    body = google_error(400, message, "INVALID_ARGUMENT").encode()
    error = GeminiDialect(BASE).parse_error(400, {}, body)
    assert error.retryable is False
    assert error.message.startswith("INVALID_ARGUMENT: * GenerateContentRequest.tools[0]")
    assert "\n" not in error.message and error.retry_after is None


def test_parse_error_wrapped_in_a_list_and_non_json() -> None:
    body = b'[{"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}]'
    error = GeminiDialect(BASE).parse_error(404, {}, body)
    assert error.message == "NOT_FOUND: models/x is not found"
    html = GeminiDialect(BASE).parse_error(502, {}, b"<html>Bad   Gateway</html>")
    assert html.message == "<html>Bad Gateway</html>" and html.retryable is True
    assert GeminiDialect(BASE).parse_error(500, {}, b"").message == "Internal Server Error"
