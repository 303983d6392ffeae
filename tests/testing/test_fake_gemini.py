"""The fake LLM server's Gemini dialect, read back with openheim's own Gemini decoder."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, ToolCall, ToolDefinition, ToolResult, Usage
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    HttpRequest,
    ProviderEvent,
    StreamEnd,
    TextDelta,
)
from openheim.providers.gemini import GeminiDialect
from openheim.providers.gemini_stream import GeminiStreamDecoder
from openheim.testing import HttpError, Reply, open_fake_llm
from openheim.testing.gemini_wire import (
    GeminiGenerateContentDialect,
    response_chunks,
    thought_signature,
)

MODEL = "gemini-test"
STREAM_PATH = f"/v1beta/models/{MODEL}:streamGenerateContent"
TOOL = ToolDefinition(
    "read_file",
    "Read a file",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


def chat(*messages: Message, tools: tuple[ToolDefinition, ...] = ()) -> ChatRequest:
    return ChatRequest(MODEL, messages or (Message.user("hi"),), tools=tools)


def dialect_for(url: str) -> GeminiDialect:
    return GeminiDialect(f"{url}/v1beta")


async def send(
    client: httpx.AsyncClient,
    request: HttpRequest,
    received: list[bytes] | None = None,
) -> list[ProviderEvent]:
    """Stream ``request`` and decode it as the provider client would (raw chunks in order)."""
    decoder = GeminiStreamDecoder(id_tag="t")
    events: list[ProviderEvent] = []
    async with client.stream(
        request.method, request.url, headers=dict(request.headers), json=request.json
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"] == "text/event-stream"
        async for chunk in response.aiter_raw():
            if received is not None:
                received.append(chunk)
            events.extend(decoder.feed(chunk))
    return events + decoder.close()


def end_of(events: list[ProviderEvent]) -> StreamEnd:
    assert isinstance(events[-1], StreamEnd)
    return events[-1]


def raw_chunks(data: bytes) -> list[dict[str, Any]]:
    events = data.decode().split("\r\n\r\n")
    assert events[-1] == ""
    return [json.loads(event.removeprefix("data: ")) for event in events[:-1]]


async def test_text_reply_decodes_to_the_script() -> None:
    usage = Usage(input_tokens=120, output_tokens=7, cache_read_tokens=100)
    async with open_fake_llm([Reply.text("Hello there — ünïcode 😀", usage=usage)]) as llm:
        request = dialect_for(llm.url).build_request(chat(), "AIza-test")
        async with httpx.AsyncClient() as client:
            received: list[bytes] = []
            events = await send(client, request, received)

    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        "Hello th",
        "ere — ü",
        "nïcode 😀",
    ]
    assert end_of(events) == StreamEnd("Hello there — ünïcode 😀", (), FinishReason.STOP, usage)
    chunks = raw_chunks(b"".join(received))
    assert len(chunks) == 4
    assert all(c["modelVersion"] == MODEL and c["responseId"] == "fake-response-1" for c in chunks)
    assert chunks[0]["usageMetadata"] == {
        "promptTokenCount": 120,
        "totalTokenCount": 120,
        "cachedContentTokenCount": 100,
    }
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 7
    (recorded,) = llm.requests
    assert (recorded.path, recorded.query) == (STREAM_PATH, "alt=sse")
    assert recorded.headers["x-goog-api-key"] == "AIza-test"
    assert recorded.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def test_parallel_calls_arrive_whole_with_one_signature() -> None:
    reply = Reply.tool_calls(
        [("call_a", "read_file", {"path": "a.py"}), ("call_b", "list_dir", '{"path": "."}')],
        fragments=3,
        text="Let me look.",
    )
    async with open_fake_llm([reply]) as llm, httpx.AsyncClient() as client:
        received: list[bytes] = []
        events = await send(client, dialect_for(llm.url).build_request(chat(), None), received)

    end = end_of(events)
    assert end.text == "Let me look."
    assert end.finish_reason is FinishReason.TOOL_CALLS
    assert end.tool_calls == (
        ToolCall("call_t_0", "read_file", '{"path": "a.py"}', signature=thought_signature(1)),
        ToolCall("call_t_1", "list_dir", '{"path": "."}'),
    )
    assert end.usage == Usage(10, 5)
    chunks = raw_chunks(b"".join(received))
    assert len(chunks) == 3  # text, both calls in one event, finish
    parts = chunks[1]["candidates"][0]["content"]["parts"]
    assert [set(part) for part in parts] == [{"functionCall", "thoughtSignature"}, {"functionCall"}]
    assert all("id" not in part["functionCall"] for part in parts)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"  # not a "tool calls" reason


async def test_a_whole_tool_turn_round_trips() -> None:
    """Calls decoded from the fake, sent back with their results, are accepted by the fake."""
    script = [Reply.tool_call("read_file", {"path": "a"}), Reply.text("It is empty.")]
    async with open_fake_llm(script) as llm, httpx.AsyncClient() as client:
        dialect = dialect_for(llm.url)
        first = end_of(await send(client, dialect.build_request(chat(tools=(TOOL,)), None)))
        (call,) = first.tool_calls
        messages = (
            Message.system("Be brief."),
            Message.user("What is in a?"),
            Message.assistant(first.text, first.tool_calls),
            Message.tool(call, ToolResult("")),
        )
        second = end_of(await send(client, dialect.build_request(chat(*messages), None)))

        # The same history without the signature is refused, as Gemini 3 does.
        unsigned = (*messages[:2], Message.assistant(None, (ToolCall(call.id, call.name),)))
        bad = dialect.build_request(chat(*unsigned, messages[3]), None)
        refused = await client.post(bad.url, json=bad.json)

    assert second.text == "It is empty."
    sent = llm.requests[1].body
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["contents"][1]["parts"][0]["thoughtSignature"] == thought_signature(1)
    assert sent["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "read_file", "response": {"result": ""}}}],
    }
    assert refused.status_code == 400
    assert "missing a thought_signature" in refused.json()["error"]["message"]
    assert llm.script.consumed == 2


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    [("length", FinishReason.LENGTH), ("content_filter", FinishReason.REFUSAL)],
)
async def test_finish_reasons_map_back(finish_reason: str, expected: FinishReason) -> None:
    async with (
        open_fake_llm([Reply.text("cut", finish_reason=finish_reason)]) as llm,
        httpx.AsyncClient() as client,
    ):
        events = await send(client, dialect_for(llm.url).build_request(chat(), None))
    assert end_of(events).finish_reason is expected


async def test_invalid_call_arguments_become_malformed_function_call() -> None:
    async with (
        open_fake_llm([Reply.tool_call("f", '{"a": ')]) as llm,
        httpx.AsyncClient() as client,
    ):
        with pytest.raises(ProviderError, match="malformed function call"):
            await send(client, dialect_for(llm.url).build_request(chat(), None))


async def test_http_errors_are_google_json() -> None:
    script = [
        HttpError(429, retry_after=13),
        HttpError(503),
        HttpError(400, body={"error": {"code": 400, "message": "custom", "status": "X"}}),
    ]
    async with open_fake_llm(script) as llm, httpx.AsyncClient() as client:
        dialect = dialect_for(llm.url)
        request = dialect.build_request(chat(), None)
        responses = [await client.post(request.url, json=request.json) for _ in script]

    limited, unavailable, custom = responses
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "13"
    assert limited.json() == {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota). (fake)",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}],
        }
    }
    error = dialect.parse_error(429, {}, limited.content)  # the body alone says when
    assert (error.retryable, error.retry_after) == (True, 13.0)
    assert error.message.startswith("RESOURCE_EXHAUSTED: Resource has been exhausted")
    assert unavailable.status_code == 503
    assert unavailable.json()["error"]["status"] == "UNAVAILABLE"
    assert "retry-after" not in unavailable.headers
    assert custom.json()["error"]["message"] == "custom"


def _contents(*contents: dict[str, Any]) -> dict[str, Any]:
    return {"contents": list(contents)}


def _user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def _model(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "model", "parts": list(parts)}


def _tools(parameters: dict[str, Any]) -> dict[str, Any]:
    declaration = {"name": "f", "description": "", "parameters": parameters}
    return {**_contents(_user({"text": "hi"})), "tools": [{"functionDeclarations": [declaration]}]}


CALL = {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}
RESPONSE = {"functionResponse": {"name": "f", "response": {"result": "ok"}}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Expected an object"),
        ({}, "contents is not specified"),
        (_contents({"role": "assistant", "parts": [{"text": "x"}]}), "valid role"),
        (_contents(_model({"text": "x"}), _user({"text": "y"})), "starts with a user turn"),
        (_contents(_user()), "parts must not be empty"),
        (_contents(_user({"text": ""})), "empty text parameter"),
        (_contents(_user({"text": "q"}), _model(CALL, CALL), _user(RESPONSE)), "number of"),
        (_contents(_user({"text": "q"}), _model(CALL), _user(RESPONSE), _user(RESPONSE)), "equal"),
        (_contents(_user(RESPONSE)), "number of function response parts"),
        (_contents(_user({"text": "q"}), _user(CALL)), "belongs in a model content"),
        (
            _contents(_user({"text": "q"}), _model({"functionCall": {"name": "f"}})),
            "missing a thought_signature",
        ),
        ({**_contents(_user({"text": "q"})), "systemInstruction": {"parts": []}}, "system"),
        (_tools({"$schema": "x", "type": "object"}), 'Unknown name "$schema"'),
        (
            _tools({"type": "object", "properties": {"a": {"additionalProperties": False}}}),
            'Unknown name "additionalProperties" at \'tools[0].function_declarations[0]'
            ".parameters.properties[a].value'",
        ),
        (_tools({"type": "object", "properties": {"a": {"$ref": "#/x"}}}), "$ref"),
        (_tools({"type": "object", "properties": {"a": {"type": ["string", "null"]}}}), "list"),
        (_tools({"type": "object", "properties": {"a": {"enum": [1]}}}), "TYPE_STRING"),
        (_tools({"type": "object", "properties": {"a": {"type": "array"}}}), "items"),
        (
            {**_contents(_user({"text": "q"})), "generationConfig": {"maxOutputTokens": 0}},
            "max_output_tokens",
        ),
    ],
)
async def test_invalid_requests_get_400_invalid_argument(body: Any, message: str) -> None:
    async with (
        open_fake_llm([Reply.text("unused")]) as llm,
        httpx.AsyncClient(base_url=llm.url) as client,
    ):
        response = await client.post(f"{STREAM_PATH}?alt=sse", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert message in error["message"]
    assert llm.script.consumed == 0


async def test_what_the_dialect_builds_passes_validation() -> None:
    """A messy schema and a long tool history, as openheim would send them, are accepted."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "opt": {"anyOf": [{"$ref": "#/$defs/Opt"}, {"type": "null"}]},
            "tags": {"type": ["array", "null"]},
            "level": {"enum": [1, 2]},
        },
        "$defs": {"Opt": {"type": "object", "additionalProperties": {"type": "string"}}},
    }
    first = ToolCall("c0", "read_file", '{"path": "a"}', signature="c2ln")
    second = ToolCall("c1", "read_file", "not json")
    messages = (
        Message.user("go"),
        Message.assistant("", (first, second)),
        Message.tool(first, ToolResult("a")),
        Message.tool(second, ToolResult("bad arguments", is_error=True)),
        Message.assistant("done"),
        Message.user("again"),
    )
    tools = (TOOL, ToolDefinition("weird", "", schema), ToolDefinition("now", ""))
    async with open_fake_llm([Reply.text("ok")]) as llm, httpx.AsyncClient() as client:
        events = await send(
            client, dialect_for(llm.url).build_request(chat(*messages, tools=tools), None)
        )
    assert end_of(events).text == "ok"


async def test_paths_without_version_and_non_streamed() -> None:
    reply = Reply.tool_call("echo", {"x": 1}, text="Sure.")
    async with (
        open_fake_llm([reply, Reply.text("array"), Reply.text("v1")]) as llm,
        httpx.AsyncClient(base_url=llm.url) as client,
    ):
        body = {"contents": [_user({"text": "hi"})]}
        whole = await client.post(f"/models/{MODEL}:generateContent", json=body)
        array = await client.post(f"/models/{MODEL}:streamGenerateContent", json=body)
        events = await send(client, GeminiDialect(llm.base_url).build_request(chat(), None))
        missing = await client.post(f"/v1beta/models/{MODEL}:countTokens", json=body)

    assert whole.status_code == 200
    candidate = whole.json()["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"] == [
        {"text": "Sure."},
        {
            "functionCall": {"name": "echo", "args": {"x": 1}},
            "thoughtSignature": thought_signature(1),
        },
    ]
    assert whole.json()["usageMetadata"]["totalTokenCount"] == 15
    chunks = array.json()  # without alt=sse Google answers with a JSON array
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert end_of(events).text == "v1"
    assert llm.requests[2].path == f"/v1/models/{MODEL}:streamGenerateContent"
    assert missing.status_code == 404


async def test_drop_after_truncates_the_stream() -> None:
    script = [Reply.text("Hello there", pieces=3, drop_after=2), Reply.text("next")]
    async with open_fake_llm(script) as llm, httpx.AsyncClient() as client:
        request = dialect_for(llm.url).build_request(chat(), None)
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            await send(client, request)
        # The connection died but the server did not: the next request is served.
        assert end_of(await send(client, request)).text == "next"


async def test_omit_done_drops_the_finish_chunk() -> None:
    async with (
        open_fake_llm([Reply.text("Hi", omit_done=True)]) as llm,
        httpx.AsyncClient() as client,
    ):
        with pytest.raises(ProviderError, match="ended unexpectedly before a finishReason"):
            await send(client, dialect_for(llm.url).build_request(chat(), None))


async def test_malformed_after_inserts_invalid_json() -> None:
    async with (
        open_fake_llm([Reply.text("Hello there", malformed_after=1)]) as llm,
        httpx.AsyncClient() as client,
    ):
        with pytest.raises(ProviderError, match="malformed JSON in stream: '{not json'"):
            await send(client, dialect_for(llm.url).build_request(chat(), None))


async def test_stall_after_times_out_the_client() -> None:
    timeout = httpx.Timeout(5.0, read=0.5)
    received: list[bytes] = []
    async with (
        open_fake_llm([Reply.text("Hello there", stall_after=1)]) as llm,
        httpx.AsyncClient(timeout=timeout) as client,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await send(client, dialect_for(llm.url).build_request(chat(), None), received)
        assert 0.4 < time.monotonic() - started < 1.5
    assert len(raw_chunks(b"".join(received))) == 1


def test_renderer_is_sans_io() -> None:
    reply = Reply((), finish_reason="length", usage=None)
    chunks = response_chunks(reply, model="m", sequence=3)
    assert chunks == [
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": ""}], "role": "model"},
                    "finishReason": "MAX_TOKENS",
                    "index": 0,
                }
            ],
            "modelVersion": "m",
            "responseId": "fake-response-3",
        }
    ]
    assert response_chunks(Reply((), omit_done=True), model="m", sequence=1) == []
    dialect = GeminiGenerateContentDialect()
    assert dialect.matches("/v1beta/models/gemini-2.5-flash:streamGenerateContent")
    assert dialect.matches("/v1beta/models/tuned/x:generateContent")
    assert not dialect.matches("/v1/chat/completions")
    assert not dialect.matches("/v1beta/models/m:embedContent")
