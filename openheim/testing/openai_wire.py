"""The OpenAI Chat Completions dialect of the fake server (sans-IO).

Streams follow the real format byte for byte where clients care: compact JSON in ``data:``
lines, the role on the first delta, tool call fragments keyed by ``index`` (continuations
carry no ``id``/``type``/``name``), a final empty delta with ``finish_reason``, the
``include_usage`` chunk with ``choices: []``, then ``data: [DONE]``. Thinking streams as
DeepSeek and vLLM send it, in ``reasoning_content`` deltas (``content: null``); a request that
sends it back is refused, as DeepSeek does.
"""

from __future__ import annotations

import http
import json
from typing import Any

import attrs

from openheim.foundation.models import Usage
from openheim.testing.script import (
    Chunk,
    HttpError,
    RecordedRequest,
    Reply,
    TextChunk,
    ThinkingChunk,
    ToolCallChunk,
)
from openheim.testing.wire import (
    Headers,
    PlainResponse,
    StreamResponse,
    error_payload_response,
    event_stream,
    json_response,
    retry_after_headers,
)

PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
DONE_EVENT = b"data: [DONE]\n\n"
SYSTEM_FINGERPRINT = "fp_fake"
REASONING_EFFORTS = frozenset({"minimal", "low", "medium", "high"})

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON for ``status``; ``type``/``code`` as the real API uses them."""
    kind, code = _ERROR_KINDS.get(status, ("server_error" if status >= 500 else "api_error", None))
    if message is None:
        message = "Rate limit reached (fake)" if status == 429 else _phrase(status)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def sse_event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def usage_payload(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _tool_call_delta(chunk: ToolCallChunk) -> dict[str, Any]:
    item: dict[str, Any] = {"index": chunk.index}
    function: dict[str, Any] = {}
    if chunk.id is not None:
        item["id"] = chunk.id
        item["type"] = "function"
    if chunk.name is not None:
        function["name"] = chunk.name
    function["arguments"] = chunk.arguments
    item["function"] = function
    return item


def _delta(chunk: Chunk) -> dict[str, Any] | None:
    """The delta for one chunk; ``None`` for what this format has no words for."""
    if isinstance(chunk, TextChunk):
        return {"content": chunk.text}
    if isinstance(chunk, ThinkingChunk):
        return {"content": None, "reasoning_content": chunk.text}
    if isinstance(chunk, ToolCallChunk):
        return {"tool_calls": [_tool_call_delta(chunk)]}
    return None


def stream_events(
    reply: Reply, *, completion_id: str, model: str, created: int, include_usage: bool
) -> tuple[bytes, ...]:
    """Every SSE event of ``reply``'s stream, in order (faults are the server's business)."""
    base: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        payload = {**base, "choices": [choice]}
        if include_usage:
            payload["usage"] = None
        return sse_event(payload)

    deltas = [d for item in reply.chunks if (d := _delta(item)) is not None] or [{"content": ""}]
    deltas[0] = {"role": "assistant", **deltas[0]}
    events = [chunk(delta, None) for delta in deltas]
    events.append(chunk({}, reply.effective_finish_reason))
    if include_usage and reply.usage is not None:
        events.append(sse_event({**base, "choices": [], "usage": usage_payload(reply.usage)}))
    if not reply.omit_done:
        events.append(DONE_EVENT)
    return tuple(events)


def completion_body(
    reply: Reply, *, completion_id: str, model: str, created: int
) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` for ``reply``: chunks assembled as a client would."""
    text = "".join(item.text for item in reply.chunks if isinstance(item, TextChunk))
    calls: dict[int, dict[str, Any]] = {}
    for item in reply.chunks:
        if isinstance(item, ToolCallChunk):
            call = calls.setdefault(
                item.index,
                {"id": None, "type": "function", "function": {"name": None, "arguments": ""}},
            )
            call["id"] = call["id"] or item.id
            call["function"]["name"] = call["function"]["name"] or item.name
            call["function"]["arguments"] += item.arguments
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if reply.thinking:
        message["reasoning_content"] = reply.thinking
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.effective_finish_reason,
            }
        ],
    }
    if reply.usage is not None:
        body["usage"] = usage_payload(reply.usage)
    return body


@attrs.frozen
class OpenAIChatDialect:
    """``POST /v1/chat/completions`` (the ``/v1`` prefix is optional)."""

    def matches(self, path: str) -> bool:
        return path in PATHS

    def check(self, request: RecordedRequest) -> str | None:
        body = request.body
        if not isinstance(body, dict):
            return "the request body must be a JSON object"
        if not isinstance(body.get("model"), str):
            return "you must provide a model parameter"
        if not isinstance(body.get("messages"), list):
            return "'messages' is a required property and must be an array"
        effort = body.get("reasoning_effort")
        if effort is not None and effort not in REASONING_EFFORTS:
            return (
                f"Invalid value for 'reasoning_effort': {effort!r}. Supported values are: "
                "'minimal', 'low', 'medium', and 'high'."
            )
        for number, message in enumerate(body["messages"]):
            if isinstance(message, dict) and "reasoning_content" in message:
                return (
                    f"messages[{number}]: the reasoning_content field is not accepted in "
                    "input messages; remove it"
                )
        return None

    def render_reply(
        self, reply: Reply, request: RecordedRequest, *, sequence: int, created: int
    ) -> StreamResponse | PlainResponse:
        body = request.body
        completion_id = f"chatcmpl-fake-{sequence}"
        request_id: Headers = (("x-request-id", f"req_fake_{sequence}"),)
        if not body.get("stream"):
            return json_response(
                200,
                completion_body(
                    reply, completion_id=completion_id, model=body["model"], created=created
                ),
                request_id,
            )
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        events = stream_events(
            reply,
            completion_id=completion_id,
            model=body["model"],
            created=created,
            include_usage=include_usage,
        )
        return event_stream(events, request_id)

    def render_error(self, error: HttpError) -> PlainResponse:
        headers = retry_after_headers(error.retry_after, with_ms=True)
        return error_payload_response(error, error_body(error.status), headers)

    def error(self, status: int, message: str) -> PlainResponse:
        return json_response(status, error_body(status, message))
