"""The Anthropic Messages dialect of the fake server (sans-IO).

Streams follow the real format where clients care: ``event:`` lines naming each event,
``message_start`` with the prompt usage (``input_tokens`` excluding the cache), one content
block per thinking run, text run or tool call (whole blocks, one after another, as the API
sends them), a ``ping``, ``message_delta`` with the stop reason and cumulative
``output_tokens``, then ``message_stop``. A thinking block streams ``thinking_delta``s, then
its signature in one ``signature_delta``; a redacted one arrives whole. Requests are checked
by ``openheim.testing.anthropic_checks``.
"""

from __future__ import annotations

import http
import json
from typing import Any

import attrs

from openheim.foundation.models import Usage
from openheim.testing.anthropic_checks import check_body, thinking_signature
from openheim.testing.script import (
    Chunk,
    HttpError,
    RecordedRequest,
    RedactedThinking,
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

PATHS = frozenset({"/v1/messages", "/messages"})

STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}
"""Script finish reasons (OpenAI's words) in Anthropic's; any other value is sent as is."""

_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Anthropic's error JSON for ``status``."""
    if message is None:
        message = _default_message(status)
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def _default_message(status: int) -> str:
    if status == 529:
        return "Overloaded"
    if status == 429:
        return "Number of request tokens has exceeded your per-minute rate limit (fake)"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def sse_event(payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()


def stop_reason(reply: Reply) -> str:
    reason = reply.effective_finish_reason
    return STOP_REASONS.get(reason, reason)


def usage_payload(usage: Usage) -> dict[str, int]:
    """Anthropic's prompt counts: ``input_tokens`` excludes cache reads and writes."""
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(0, uncached),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }


@attrs.frozen
class _Block:
    """One content block: all text or thinking chunks, all fragments of one tool call, or
    one redacted thinking block."""

    kind: str  # "text" | "thinking" | "redacted_thinking" | "tool_use"
    chunks: tuple[Chunk, ...]

    def tool_id(self, fallback: str) -> str:
        ids = (c.id for c in self.chunks if isinstance(c, ToolCallChunk) and c.id)
        return next(ids, fallback)

    def tool_name(self) -> str:
        names = (c.name for c in self.chunks if isinstance(c, ToolCallChunk) and c.name)
        return next(names, "")

    def fragments(self) -> list[str]:
        return [c.arguments for c in self.chunks if isinstance(c, ToolCallChunk) and c.arguments]

    def texts(self) -> list[str]:
        return [c.text for c in self.chunks if isinstance(c, TextChunk | ThinkingChunk)]

    def redacted_data(self) -> str:
        return next((c.data for c in self.chunks if isinstance(c, RedactedThinking)), "")

    def content(self, tool_id: str) -> dict[str, Any]:
        """The whole block, as a non-streamed message (and a client) has it."""
        if self.kind == "text":
            return {"type": "text", "text": "".join(self.texts())}
        if self.kind == "thinking":
            thought = "".join(self.texts())
            return {
                "type": "thinking",
                "thinking": thought,
                "signature": thinking_signature(thought),
            }
        if self.kind == "redacted_thinking":
            return {"type": "redacted_thinking", "data": self.redacted_data()}
        arguments = "".join(self.fragments())
        try:
            tool_input = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            tool_input = {}  # the real API always sends an object
        return {"type": "tool_use", "id": tool_id, "name": self.tool_name(), "input": tool_input}


def content_blocks(reply: Reply) -> list[_Block]:
    """The reply's chunks grouped into blocks, in order of each block's first chunk.

    The script may interleave calls (OpenAI streams do); Anthropic sends one block at a time.
    """
    order: list[tuple[str, int]] = []
    grouped: dict[tuple[str, int], list[Chunk]] = {}
    for position, chunk in enumerate(reply.chunks):
        if isinstance(chunk, TextChunk | ThinkingChunk):
            if not chunk.text:
                continue  # the API never streams an empty text delta
            key = ("text" if isinstance(chunk, TextChunk) else "thinking", 0)
        elif isinstance(chunk, RedactedThinking):
            key = ("redacted_thinking", position)
        else:
            key = ("tool_use", chunk.index)
        if key not in grouped:
            order.append(key)
            grouped[key] = []
        grouped[key].append(chunk)
    return [_Block(key[0], tuple(grouped[key])) for key in order]


def stream_events(reply: Reply, *, message_id: str, model: str) -> tuple[bytes, ...]:
    """Every SSE event of ``reply``'s stream, in order (faults are the server's business)."""
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if reply.usage is not None:
        start_usage = usage_payload(reply.usage)
        start_usage["output_tokens"] = min(1, reply.usage.output_tokens)
        message["usage"] = start_usage
    events = [sse_event({"type": "message_start", "message": message})]
    blocks = content_blocks(reply)
    for index, block in enumerate(blocks):
        events.extend(_block_events(index, block, message_id))
    # The real API pings right after the first content_block_start.
    events.insert(2 if blocks else 1, sse_event({"type": "ping"}))
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(reply), "stop_sequence": None},
    }
    if reply.usage is not None:
        delta["usage"] = {"output_tokens": reply.usage.output_tokens}
    events.append(sse_event(delta))
    if not reply.omit_done:
        events.append(sse_event({"type": "message_stop"}))
    return tuple(events)


def _block_events(index: int, block: _Block, message_id: str) -> list[bytes]:
    deltas: list[dict[str, Any]] = []
    if block.kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": text} for text in block.texts()]
    elif block.kind == "thinking":
        start = {"type": "thinking", "thinking": ""}
        deltas = [{"type": "thinking_delta", "thinking": text} for text in block.texts()]
        signature = thinking_signature("".join(block.texts()))
        deltas.append({"type": "signature_delta", "signature": signature})
    elif block.kind == "redacted_thinking":
        start = block.content("")
    else:
        start = {
            "type": "tool_use",
            "id": block.tool_id(f"toolu_{message_id}_{index}"),
            "name": block.tool_name(),
            "input": {},
        }
        deltas = [{"type": "input_json_delta", "partial_json": part} for part in block.fragments()]
    return [
        sse_event({"type": "content_block_start", "index": index, "content_block": start}),
        *(
            sse_event({"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ),
        sse_event({"type": "content_block_stop", "index": index}),
    ]


def message_body(reply: Reply, *, message_id: str, model: str) -> dict[str, Any]:
    """The non-streamed ``message`` for ``reply``: blocks assembled as a client would."""
    content = [
        block.content(block.tool_id(f"toolu_{message_id}_{index}"))
        for index, block in enumerate(content_blocks(reply))
    ]
    body: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(reply),
        "stop_sequence": None,
    }
    if reply.usage is not None:
        body["usage"] = usage_payload(reply.usage)
    return body


@attrs.frozen
class AnthropicMessagesDialect:
    """``POST /v1/messages`` (the ``/v1`` prefix is optional)."""

    def matches(self, path: str) -> bool:
        return path in PATHS

    def check(self, request: RecordedRequest) -> str | None:
        if "anthropic-version" not in request.headers:
            return "anthropic-version: header is required"
        return check_body(request.body)

    def render_reply(
        self, reply: Reply, request: RecordedRequest, *, sequence: int, created: int
    ) -> StreamResponse | PlainResponse:
        body = request.body
        message_id = f"msg_fake_{sequence}"
        request_id: Headers = (("request-id", f"req_fake_{sequence}"),)
        if not body.get("stream"):
            return json_response(
                200, message_body(reply, message_id=message_id, model=body["model"]), request_id
            )
        events = stream_events(reply, message_id=message_id, model=body["model"])
        return event_stream(events, request_id)

    def render_error(self, error: HttpError) -> PlainResponse:
        headers = retry_after_headers(error.retry_after)
        return error_payload_response(error, error_body(error.status), headers)

    def error(self, status: int, message: str) -> PlainResponse:
        return json_response(status, error_body(status, message))
