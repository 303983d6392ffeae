"""The fake LLM server's Anthropic Messages dialect, over real HTTP, decoded by our client core."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, ToolCall, ToolResult, Usage
from openheim.providers.anthropic import AnthropicDialect, AnthropicStreamDecoder
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    ProviderEvent,
    StreamEnd,
    TextDelta,
)
from openheim.testing import HttpError, Reply, open_fake_llm
from openheim.testing.anthropic_wire import stream_events

MODEL = "claude-fake"
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "test-key"}


def messages_body(*, stream: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": stream,
    }
    body.update(extra)
    return body


async def stream_raw(
    client: httpx.AsyncClient, body: dict[str, Any], received: list[bytes] | None = None
) -> list[bytes]:
    """The raw body pieces of one streamed response (appended to ``received`` as they come)."""
    received = [] if received is None else received
    async with client.stream("POST", "/messages", json=body, headers=HEADERS) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for piece in response.aiter_raw():
            received.append(piece)
    return received


def decode(pieces: list[bytes]) -> list[ProviderEvent]:
    decoder = AnthropicStreamDecoder(id_tag="t")
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.close()


def event_payloads(pieces: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` for each SSE event; the name must equal ``data.type``."""
    out = []
    for block in b"".join(pieces).decode().split("\n\n"):
        if not block:
            continue
        event_line, data_line = block.split("\n")
        name = event_line.removeprefix("event: ")
        payload = json.loads(data_line.removeprefix("data: "))
        assert payload["type"] == name
        out.append((name, payload))
    return out


def end_of(events: list[ProviderEvent]) -> StreamEnd:
    assert isinstance(events[-1], StreamEnd)
    assert sum(isinstance(event, StreamEnd) for event in events) == 1
    return events[-1]


async def test_text_reply_decodes_back_to_the_script() -> None:
    usage = Usage(
        input_tokens=1300, output_tokens=42, cache_read_tokens=1000, cache_write_tokens=200
    )
    async with (
        open_fake_llm([Reply.text("Hello there", pieces=3, usage=usage)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        pieces = await stream_raw(client, messages_body())

    events = decode(pieces)
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("Hell"),
        TextDelta("o t"),
        TextDelta("here"),
    ]
    assert end_of(events) == StreamEnd("Hello there", (), FinishReason.STOP, usage)
    names = [name for name, _ in event_payloads(pieces)]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = event_payloads(pieces)[0][1]["message"]
    assert start["model"] == MODEL and start["id"] == "msg_fake_1"
    assert start["usage"] == {
        "input_tokens": 100,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
        "output_tokens": 1,
    }


async def test_parallel_tool_calls_become_sequential_blocks() -> None:
    arguments = {"path": "src/main.py", "note": "ünïcode"}
    reply = Reply.tool_calls(
        [("toolu_a", "read_file", arguments), ("toolu_b", "list_dir", '{"path": "."}')],
        fragments=4,
        text="Let me look.",
    )
    async with (
        open_fake_llm([reply]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        pieces = await stream_raw(client, messages_body())

    events = decode(pieces)
    end = end_of(events)
    assert end.text == "Let me look."
    assert end.tool_calls == (
        ToolCall("toolu_a", "read_file", json.dumps(arguments)),
        ToolCall("toolu_b", "list_dir", '{"path": "."}'),
    )
    assert end.finish_reason is FinishReason.TOOL_CALLS
    assert end.usage == Usage(input_tokens=10, output_tokens=5)
    payloads = event_payloads(pieces)
    blocks = [p["index"] for name, p in payloads if name.startswith("content_block")]
    assert blocks == [0] * 3 + [1] * 6 + [2] * 6  # whole blocks, one after another
    starts = [p["content_block"] for name, p in payloads if name == "content_block_start"]
    assert starts == [
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_a", "name": "read_file", "input": {}},
        {"type": "tool_use", "id": "toolu_b", "name": "list_dir", "input": {}},
    ]
    assert [p["index"] for name, p in payloads if name == "content_block_stop"] == [0, 1, 2]
    final = next(p for name, p in payloads if name == "message_delta")
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"] == {"output_tokens": 5}


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason", "expected"),
    [
        ("length", "max_tokens", FinishReason.LENGTH),
        ("content_filter", "refusal", FinishReason.REFUSAL),
        ("pause_turn", "pause_turn", FinishReason.STOP),
    ],
)
async def test_finish_reasons_map(
    finish_reason: str, stop_reason: str, expected: FinishReason
) -> None:
    async with (
        open_fake_llm([Reply.text("x", finish_reason=finish_reason, usage=None)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        pieces = await stream_raw(client, messages_body())
    final = next(p for name, p in event_payloads(pieces) if name == "message_delta")
    assert final == {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
    }
    end = end_of(decode(pieces))
    assert end.finish_reason is expected
    assert end.usage is None


async def test_our_dialect_request_passes_validation_and_round_trips() -> None:
    call = ToolCall("toolu_1", "read_file", '{"path": "a"}')
    messages = (
        Message.system("Be brief."),
        Message.user("Read a"),
        Message.assistant("Reading.", (call,)),
        Message.tool(call, ToolResult("", is_error=True)),
        Message.user("And now?"),
    )
    dialect = AnthropicDialect("http://placeholder/v1")
    async with (
        open_fake_llm([Reply.text("Done.")]) as llm,
        httpx.AsyncClient() as client,
    ):
        request = AnthropicDialect(llm.base_url).build_request(
            ChatRequest(MODEL, messages), "test-key"
        )
        async with client.stream(
            request.method, request.url, headers=dict(request.headers), json=request.json
        ) as response:
            assert response.status_code == 200
            pieces = [piece async for piece in response.aiter_raw()]

    assert end_of(decode(pieces)).text == "Done."
    recorded = llm.requests[0]
    assert recorded.path == "/v1/messages"
    assert recorded.headers["x-api-key"] == "test-key"
    assert recorded.body == dialect.build_request(ChatRequest(MODEL, messages), None).json


async def test_http_errors_have_the_anthropic_shape() -> None:
    script = [
        HttpError(529),
        HttpError(429, retry_after=3),
        HttpError(500),
        HttpError(401),
        HttpError(503, body="upstream unavailable"),
    ]
    async with (
        open_fake_llm(script) as llm,
        httpx.AsyncClient(base_url=llm.base_url, headers=HEADERS) as client,
    ):
        responses = [await client.post("/messages", json=messages_body()) for _ in script]

    overloaded, limited, server, unauthorized, plain = responses
    assert overloaded.status_code == 529
    assert overloaded.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert server.json()["error"]["type"] == "api_error"
    assert unauthorized.json()["error"]["type"] == "authentication_error"
    assert plain.text == "upstream unavailable"

    dialect = AnthropicDialect(llm.base_url)
    error = dialect.parse_error(529, overloaded.headers, overloaded.content)
    assert (error.message, error.retryable) == ("overloaded_error: Overloaded", True)
    error = dialect.parse_error(429, limited.headers, limited.content)
    assert error.retry_after == 3.0 and error.retryable


def tool_use(call_id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": "f", "input": {}}


def tool_result(call_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": "ok"}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (
            messages_body(
                messages=[
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": "b"},
                ]
            ),
            HEADERS,
            "roles must alternate",
        ),
        (
            messages_body(messages=[{"role": "assistant", "content": "a"}]),
            HEADERS,
            'first message must use the "user" role',
        ),
        ({"model": MODEL, "messages": [{"role": "user", "content": "a"}]}, HEADERS, "max_tokens"),
        (messages_body(), {}, "anthropic-version"),
        (
            messages_body(messages=[{"role": "user", "content": [text("")]}]),
            HEADERS,
            "text content blocks must be non-empty",
        ),
        (
            messages_body(
                messages=[
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": [tool_use("toolu_1"), tool_use("toolu_2")]},
                    {"role": "user", "content": [tool_result("toolu_1"), text("b")]},
                ]
            ),
            HEADERS,
            "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_2",
        ),
        (
            messages_body(
                messages=[
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": [tool_use("toolu_1")]},
                    {"role": "user", "content": [tool_result("toolu_1")]},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": [tool_result("toolu_1")]},
                ]
            ),
            HEADERS,
            "unexpected `tool_use_id`",
        ),
        (
            messages_body(tools=[{"name": "f", "parameters": {}}]),
            HEADERS,
            "tools.0.input_schema",
        ),
    ],
)
async def test_validation_rejects_what_the_real_api_rejects(
    body: dict[str, Any], headers: dict[str, str], expected: str
) -> None:
    async with (
        open_fake_llm([Reply.text("never sent")]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        response = await client.post("/messages", json=body, headers=headers)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert expected in error["error"]["message"]
    assert llm.script.consumed == 0  # a rejected request spends no scripted response


async def test_drop_after_truncates_the_stream() -> None:
    script = [Reply.text("Hello there", pieces=3, drop_after=4), Reply.text("next")]
    received: list[bytes] = []
    async with (
        open_fake_llm(script) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            await stream_raw(client, messages_body(), received)
        # The connection died but the server did not: the next request is served.
        assert end_of(decode(await stream_raw(client, messages_body()))).text == "next"

    # message_start, content_block_start, ping, the first text delta; then the drop.
    assert [name for name, _ in event_payloads(received)][-1] == "content_block_delta"
    decoder = AnthropicStreamDecoder()
    assert [e for piece in received for e in decoder.feed(piece)] == [TextDelta("Hell")]
    with pytest.raises(ProviderError, match="before message_stop"):
        decoder.close()


async def test_malformed_after_makes_the_decoder_fail() -> None:
    async with (
        open_fake_llm([Reply.text("Hello there", malformed_after=3)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        pieces = await stream_raw(client, messages_body())
    assert b"data: {not json\n\n" in pieces
    with pytest.raises(ProviderError, match="malformed JSON in stream") as info:
        decode(pieces)
    assert info.value.retryable is False


async def test_omit_done_leaves_out_message_stop() -> None:
    async with (
        open_fake_llm([Reply.text("Hi", omit_done=True)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        pieces = await stream_raw(client, messages_body())
    assert [name for name, _ in event_payloads(pieces)][-1] == "message_delta"
    assert end_of(decode(pieces)).text == "Hi"  # the stop reason arrived, so it still ends


async def test_stall_after_times_out_the_client() -> None:
    timeout = httpx.Timeout(5.0, read=0.5)
    received: list[bytes] = []
    async with (
        open_fake_llm([Reply.text("Hello there", stall_after=1), Reply.text("ok")]) as llm,
        httpx.AsyncClient(base_url=llm.base_url, timeout=timeout) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await stream_raw(client, messages_body(), received)
        assert end_of(decode(await stream_raw(client, messages_body()))).text == "ok"
    assert [name for name, _ in event_payloads(received)] == ["message_start"]


async def test_non_streaming_request_gets_a_message() -> None:
    usage = Usage(input_tokens=30, output_tokens=5, cache_read_tokens=20)
    reply = Reply.tool_call("echo", {"x": 1}, id="toolu_9", text="Sure.", usage=usage)
    async with (
        open_fake_llm([reply]) as llm,
        httpx.AsyncClient(base_url=llm.url, headers=HEADERS) as client,
    ):
        response = await client.post("/v1/messages", json=messages_body(stream=False))
    assert response.status_code == 200
    assert response.json() == {
        "id": "msg_fake_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [
            {"type": "text", "text": "Sure."},
            {"type": "tool_use", "id": "toolu_9", "name": "echo", "input": {"x": 1}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 20,
            "output_tokens": 5,
        },
    }


def test_renderer_is_sans_io() -> None:
    reply = Reply((), finish_reason="length", usage=None, omit_done=True)
    events = stream_events(reply, message_id="m", model="claude")
    assert all(event.startswith(b"event: ") and event.endswith(b"\n\n") for event in events)
    names = [event.split(b"\n")[0].removeprefix(b"event: ") for event in events]
    assert names == [b"message_start", b"ping", b"message_delta"]
    decoder = AnthropicStreamDecoder()
    assert decoder.feed(b"".join(events)) == []
    assert decoder.close() == [StreamEnd("", (), FinishReason.LENGTH, None)]
