"""The OpenAI Responses API dialect of the fake server (sans-IO).

Streams follow the real format where clients care: ``event:`` lines naming each event, a
``sequence_number`` on every payload, ``response.created`` and ``response.in_progress``, then
one output item at a time (a ``reasoning`` item whose summary streams as
``response.reasoning_summary_text.delta``, a ``message`` whose text streams as
``response.output_text.delta``, ``function_call`` items whose arguments stream as
``response.function_call_arguments.delta``), each closed by ``response.output_item.done``
with the whole item, and last ``response.completed`` (or ``response.incomplete`` for a
``length`` or ``content_filter`` finish) with the usage. There is no ``[DONE]``;
``Reply.omit_done`` leaves out that last event. Reasoning carries ``encrypted_content`` only
when the request asked for it in ``include``. Requests are checked by
``openheim.testing.responses_checks``.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from openheim.foundation.models import Usage
from openheim.testing.anthropic_wire import content_blocks
from openheim.testing.openai_wire import error_body
from openheim.testing.responses_checks import check_body, reasoning_blob
from openheim.testing.script import HttpError, RecordedRequest, Reply
from openheim.testing.wire import (
    Headers,
    PlainResponse,
    StreamResponse,
    error_payload_response,
    event_stream,
    json_response,
    retry_after_headers,
)

PATHS = frozenset({"/v1/responses", "/responses"})
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Script finish reasons that end a response ``incomplete``, and the reason it gives."""

Item = dict[str, Any]


def usage_payload(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


@attrs.frozen
class _Output:
    """One output item whole, and the pieces it streams in."""

    item: Item
    pieces: tuple[str, ...]


def output_items(reply: Reply, *, sequence: int, encrypted: bool) -> list[_Output]:
    """The reply's output items, one per block of ``content_blocks`` (redacted thinking has
    no counterpart here and is left out)."""
    outputs: list[_Output] = []
    for index, block in enumerate(content_blocks(reply)):
        item_id = f"{sequence}_{index}"
        if block.kind == "thinking":
            texts = tuple(block.texts())
            item: Item = {
                "id": f"rs_fake_{item_id}",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "".join(texts)}],
            }
            item["encrypted_content"] = reasoning_blob(item["id"]) if encrypted else None
            outputs.append(_Output(item, texts))
        elif block.kind == "text":
            texts = tuple(block.texts())
            part = {"type": "output_text", "text": "".join(texts), "annotations": []}
            item = {
                "id": f"msg_fake_{item_id}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
            outputs.append(_Output(item, texts))
        elif block.kind == "tool_use":
            fragments = tuple(block.fragments())
            item = {
                "id": f"fc_fake_{item_id}",
                "type": "function_call",
                "status": "completed",
                "call_id": block.tool_id(f"call_fake_{item_id}"),
                "name": block.tool_name(),
                "arguments": "".join(fragments),
            }
            outputs.append(_Output(item, fragments))
    return outputs


def wants_encrypted_reasoning(request_body: dict[str, Any]) -> bool:
    include = request_body.get("include")
    return isinstance(include, list) and "reasoning.encrypted_content" in include


def response_object(
    reply: Reply, request_body: dict[str, Any], *, sequence: int, created: int
) -> dict[str, Any]:
    """The final ``response`` object: status, output items and usage."""
    encrypted = wants_encrypted_reasoning(request_body)
    items = [out.item for out in output_items(reply, sequence=sequence, encrypted=encrypted)]
    reason = reply.effective_finish_reason
    incomplete = (
        None if reason in ("stop", "tool_calls") else INCOMPLETE_REASONS.get(reason, reason)
    )
    return {
        "id": f"resp_fake_{sequence}",
        "object": "response",
        "created_at": created,
        "status": "completed" if incomplete is None else "incomplete",
        "incomplete_details": None if incomplete is None else {"reason": incomplete},
        "error": None,
        "model": request_body.get("model", ""),
        "output": items,
        "store": request_body.get("store", True),
        "usage": None if reply.usage is None else usage_payload(reply.usage),
    }


def stream_events(
    reply: Reply, request_body: dict[str, Any], *, sequence: int, created: int
) -> tuple[bytes, ...]:
    """Every SSE event of ``reply``'s stream, in order (faults are the server's business)."""
    final = response_object(reply, request_body, sequence=sequence, created=created)
    start = {**final, "status": "in_progress", "incomplete_details": None, "output": []}
    start["usage"] = None
    payloads: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    encrypted = wants_encrypted_reasoning(request_body)
    for index, out in enumerate(output_items(reply, sequence=sequence, encrypted=encrypted)):
        payloads.extend(_item_events(index, out))
    if not reply.omit_done:
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        payloads.append({"type": kind, "response": final})
    return tuple(
        sse_event({**payload, "sequence_number": number}) for number, payload in enumerate(payloads)
    )


def _item_events(index: int, out: _Output) -> list[dict[str, Any]]:
    item = out.item
    at = {"item_id": item["id"], "output_index": index}
    kind = item["type"]
    if kind == "reasoning":
        added = {**item, "summary": [], "encrypted_content": None}
        part = {"type": "summary_text", "text": ""}
        text = item["summary"][0]["text"]
        inner = [
            {
                "type": "response.reasoning_summary_part.added",
                **at,
                "summary_index": 0,
                "part": part,
            },
            *(
                {
                    "type": "response.reasoning_summary_text.delta",
                    **at,
                    "summary_index": 0,
                    "delta": piece,
                }
                for piece in out.pieces
            ),
            {
                "type": "response.reasoning_summary_text.done",
                **at,
                "summary_index": 0,
                "text": text,
            },
            {
                "type": "response.reasoning_summary_part.done",
                **at,
                "summary_index": 0,
                "part": {**part, "text": text},
            },
        ]
    elif kind == "message":
        added = {**item, "status": "in_progress", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        text = item["content"][0]["text"]
        inner = [
            {"type": "response.content_part.added", **at, "content_index": 0, "part": part},
            *(
                {"type": "response.output_text.delta", **at, "content_index": 0, "delta": piece}
                for piece in out.pieces
            ),
            {"type": "response.output_text.done", **at, "content_index": 0, "text": text},
            {
                "type": "response.content_part.done",
                **at,
                "content_index": 0,
                "part": {**part, "text": text},
            },
        ]
    else:
        added = {**item, "status": "in_progress", "arguments": ""}
        inner = [
            *(
                {"type": "response.function_call_arguments.delta", **at, "delta": piece}
                for piece in out.pieces
            ),
            {"type": "response.function_call_arguments.done", **at, "arguments": item["arguments"]},
        ]
    return [
        {"type": "response.output_item.added", "output_index": index, "item": added},
        *inner,
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


def sse_event(payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()


@attrs.frozen
class OpenAIResponsesDialect:
    """``POST /v1/responses`` (the ``/v1`` prefix is optional)."""

    def matches(self, path: str) -> bool:
        return path in PATHS

    def check(self, request: RecordedRequest) -> str | None:
        return check_body(request.body)

    def render_reply(
        self, reply: Reply, request: RecordedRequest, *, sequence: int, created: int
    ) -> StreamResponse | PlainResponse:
        body = request.body
        request_id: Headers = (("x-request-id", f"req_fake_{sequence}"),)
        if not body.get("stream"):
            final = response_object(reply, body, sequence=sequence, created=created)
            return json_response(200, final, request_id)
        events = stream_events(reply, body, sequence=sequence, created=created)
        return event_stream(events, request_id)

    def render_error(self, error: HttpError) -> PlainResponse:
        headers = retry_after_headers(error.retry_after, with_ms=True)
        return error_payload_response(error, error_body(error.status), headers)

    def error(self, status: int, message: str) -> PlainResponse:
        return json_response(status, error_body(status, message))
