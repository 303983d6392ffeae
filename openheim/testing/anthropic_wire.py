"""The Anthropic Messages dialect of the fake server (sans-IO).

Streams follow the real format where clients care: ``event:`` lines naming each event,
``message_start`` with the prompt usage (``input_tokens`` excluding the cache), one content
block per text run or tool call (whole blocks, one after another, as the API sends them), a
``ping``, ``message_delta`` with the stop reason and cumulative ``output_tokens``, then
``message_stop``. Requests are validated the way the real API rejects them, so a client that
breaks role alternation or loses a ``tool_result`` fails here first.
"""

from __future__ import annotations

import http
import json
from typing import Any

import attrs

from openheim.foundation.models import Usage
from openheim.testing.script import HttpError, RecordedRequest, Reply, TextChunk, ToolCallChunk
from openheim.testing.wire import (
    Headers,
    PlainResponse,
    StreamResponse,
    error_payload_response,
    format_seconds,
    json_response,
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
    """One content block: all text chunks, or all fragments of one tool call."""

    kind: str  # "text" | "tool_use"
    chunks: tuple[TextChunk | ToolCallChunk, ...]

    def tool_id(self, fallback: str) -> str:
        ids = (c.id for c in self.chunks if isinstance(c, ToolCallChunk) and c.id)
        return next(ids, fallback)

    def tool_name(self) -> str:
        names = (c.name for c in self.chunks if isinstance(c, ToolCallChunk) and c.name)
        return next(names, "")

    def fragments(self) -> list[str]:
        return [c.arguments for c in self.chunks if isinstance(c, ToolCallChunk) and c.arguments]

    def texts(self) -> list[str]:
        return [c.text for c in self.chunks if isinstance(c, TextChunk)]


def content_blocks(reply: Reply) -> list[_Block]:
    """The reply's chunks grouped into blocks, in order of each block's first chunk.

    The script may interleave calls (OpenAI streams do); Anthropic sends one block at a time.
    """
    order: list[str | int] = []
    grouped: dict[str | int, list[TextChunk | ToolCallChunk]] = {}
    for chunk in reply.chunks:
        if isinstance(chunk, TextChunk):
            if not chunk.text:
                continue  # the API never streams an empty text delta
            key: str | int = "text"
        else:
            key = chunk.index
        if key not in grouped:
            order.append(key)
            grouped[key] = []
        grouped[key].append(chunk)
    return [_Block("text" if key == "text" else "tool_use", tuple(grouped[key])) for key in order]


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
    if block.kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": text} for text in block.texts()]
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
    content: list[dict[str, Any]] = []
    for index, block in enumerate(content_blocks(reply)):
        if block.kind == "text":
            content.append({"type": "text", "text": "".join(block.texts())})
            continue
        arguments = "".join(block.fragments())
        try:
            tool_input = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            tool_input = {}  # the real API always sends an object
        content.append(
            {
                "type": "tool_use",
                "id": block.tool_id(f"toolu_{message_id}_{index}"),
                "name": block.tool_name(),
                "input": tool_input,
            }
        )
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


# --- request validation --------------------------------------------------------------------


def check_messages(messages: Any) -> str | None:
    """Why ``messages`` would be rejected by the real API, or ``None``."""
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    previous_role: str | None = None
    pending_tool_uses: tuple[int, list[str]] | None = None  # (message number, ids)
    for number, message in enumerate(messages):
        where = f"messages.{number}"
        if not isinstance(message, dict):
            return f"{where}: Input should be a valid dictionary"
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"{where}.role: Input should be 'user' or 'assistant'"
        if number == 0 and role != "user":
            return f'{where}: the first message must use the "user" role'
        if role == previous_role:
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        previous_role = role
        blocks, problem = _blocks_of(message.get("content"), where)
        if problem is not None:
            return problem
        result_ids = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        if pending_tool_uses is not None:
            asked_in, asked = pending_tool_uses
            missing = [call_id for call_id in asked if call_id not in result_ids]
            if missing:
                return (
                    f"messages.{asked_in}: `tool_use` ids were found without `tool_result` "
                    f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )
        asked_before = pending_tool_uses[1] if pending_tool_uses is not None else []
        unexpected = [call_id for call_id in result_ids if call_id not in asked_before]
        if unexpected:
            return (
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(map(str, unexpected))}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )
        tool_uses = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
        pending_tool_uses = (number, tool_uses) if role == "assistant" and tool_uses else None
    if pending_tool_uses is not None:
        asked_in, asked = pending_tool_uses
        return (
            f"messages.{asked_in}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(asked)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )
    return None


def _blocks_of(content: Any, where: str) -> tuple[list[dict[str, Any]], str | None]:
    if isinstance(content, str):
        if not content.strip():
            return [], f"{where}.content: text content blocks must contain non-whitespace text"
        return [{"type": "text", "text": content}], None
    if not isinstance(content, list):
        return [], f"{where}.content: Input should be a valid string or list"
    for number, block in enumerate(content):
        problem = _check_block(block, f"{where}.content.{number}")
        if problem is not None:
            return [], problem
    return content, None


def _check_block(block: Any, where: str) -> str | None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return f"{where}: Input should be a content block with a type"
    kind = block["type"]
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str) or not text:
            return "messages: text content blocks must be non-empty"
        if not text.strip():
            return "messages: text content blocks must contain non-whitespace text"
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            return f"{where}.tool_use: id and name are required"
        if not isinstance(block.get("input"), dict):
            return f"{where}.tool_use.input: Input should be a valid dictionary"
    elif kind == "image":
        source = block.get("source")
        if not isinstance(source, dict) or source.get("type") != "base64":
            return f"{where}.image.source: Input should be a valid base64 image source"
        if not isinstance(source.get("data"), str) or not isinstance(source.get("media_type"), str):
            return f"{where}.image.source: data and media_type are required"
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            return f"{where}.tool_result.tool_use_id: Field required"
        if isinstance(block.get("content"), list):
            for number, inner in enumerate(block["content"]):
                problem = _check_block(inner, f"{where}.tool_result.content.{number}")
                if problem is not None:
                    return problem
        if "is_error" in block and not isinstance(block["is_error"], bool):
            return f"{where}.tool_result.is_error: Input should be a valid boolean"
    return None


def check_tools(tools: Any) -> str | None:
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    for number, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return f"tools.{number}.name: Field required"
        if not isinstance(tool.get("input_schema"), dict):
            return f"tools.{number}.input_schema: Field required"
    return None


def check_system(system: Any) -> str | None:
    if isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid string or list"
    for number, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            return f"system.{number}: Input should be a text block"
        text = block.get("text")
        if not isinstance(text, str) or not text.strip():
            return "system: text content blocks must be non-empty"
    return None


@attrs.frozen
class AnthropicMessagesDialect:
    """``POST /v1/messages`` (the ``/v1`` prefix is optional)."""

    def matches(self, path: str) -> bool:
        return path in PATHS

    def check(self, request: RecordedRequest) -> str | None:
        if "anthropic-version" not in request.headers:
            return "anthropic-version: header is required"
        body = request.body
        if not isinstance(body, dict):
            return "the request body must be a JSON object"
        if not isinstance(body.get("model"), str):
            return "model: Field required"
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            return "max_tokens: Field required"
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return "max_tokens: Input should be a positive integer"
        if "system" in body and (problem := check_system(body["system"])) is not None:
            return problem
        if "tools" in body and (problem := check_tools(body["tools"])) is not None:
            return problem
        return check_messages(body.get("messages"))

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
        headers: Headers = (
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            *request_id,
        )
        return StreamResponse(headers, events)

    def render_error(self, error: HttpError) -> PlainResponse:
        headers: Headers = ()
        if error.retry_after is not None:
            headers = (("retry-after", format_seconds(error.retry_after)),)
        return error_payload_response(error, error_body(error.status), headers)

    def error(self, status: int, message: str) -> PlainResponse:
        return json_response(status, error_body(status, message))
