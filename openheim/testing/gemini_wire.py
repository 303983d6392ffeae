"""The Google Gemini ``generateContent`` dialect of the fake server (sans-IO).

Streams look like ``streamGenerateContent?alt=sse``: each ``data:`` is a whole
``GenerateContentResponse`` (CRLF-framed, as Google sends them), one per text chunk; the
scripted fragments of all tool calls are assembled into whole ``functionCall`` parts sent in
one event, without ids, the first with a ``thoughtSignature`` (as Gemini 3 does); the last
event carries the ``finishReason`` (``STOP`` also after calls) and the full ``usageMetadata``.
Thinking chunks stream as ``{"text", "thought": true}`` parts, one event each, as with
``includeThoughts``. There is no end marker, so ``Reply.omit_done`` leaves out that last
event, and fault positions count these events (one per text or thinking chunk, one for all
calls, the last one).
Requests are checked by ``openheim.testing.gemini_checks``.
"""

from __future__ import annotations

import base64
import http
import json
import re
from typing import Any

import attrs

from openheim.foundation.models import Usage
from openheim.testing.gemini_checks import check_request
from openheim.testing.script import (
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
    json_response,
    retry_after_headers,
)

PATH = re.compile(
    r"(?:/v1beta|/v1)?/models/(?P<model>[^:]+):(?P<method>streamGenerateContent|generateContent)"
)
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",  # Gemini has no separate reason for calls
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
_DEFAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota). (fake)",
    500: "An internal error has occurred. Please retry. (fake)",
    503: "The model is overloaded. Please try again later. (fake)",
}
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def status_name(status: int) -> str:
    """The ``google.rpc.Code`` name Google's JSON errors carry for an HTTP status."""
    return STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def error_body(
    status: int, message: str | None = None, *, retry_after: float | None = None
) -> dict[str, Any]:
    """Google's error JSON; a ``retry_after`` becomes a ``RetryInfo`` detail, as on 429s."""
    if message is None:
        message = _DEFAULT_MESSAGES.get(status) or _phrase(status)
    error: dict[str, Any] = {"code": status, "message": message, "status": status_name(status)}
    if retry_after is not None:
        error["details"] = [{"@type": RETRY_INFO, "retryDelay": f"{retry_after:g}s"}]
    return {"error": error}


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def finish_reason(reply: Reply) -> str:
    """The Gemini ``finishReason`` for a scripted one; unknown ones pass through upper-cased
    (so a script can say ``"recitation"`` or ``"malformed_function_call"``)."""
    raw = reply.effective_finish_reason
    return FINISH_REASONS.get(raw, raw.upper())


def thought_signature(sequence: int) -> str:
    """The fake's opaque signature for the calls of reply ``sequence`` (base64, as Google's)."""
    return base64.b64encode(f"fake-thought-signature-{sequence}".encode()).decode()


def usage_metadata(usage: Usage, *, final: bool = True) -> dict[str, Any]:
    """``usageMetadata``; before the last chunk Gemini reports only the prompt so far."""
    metadata: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
    if final:
        metadata["candidatesTokenCount"] = usage.output_tokens
    metadata["totalTokenCount"] = usage.total_tokens if final else usage.input_tokens
    if usage.cache_read_tokens:
        metadata["cachedContentTokenCount"] = usage.cache_read_tokens
    return metadata


def function_call_parts(reply: Reply, *, sequence: int) -> list[dict[str, Any]] | None:
    """Each scripted call assembled into one ``functionCall`` part, in index order.

    ``None`` when some call's arguments are not a JSON object: Gemini cannot send those and
    ends the response with ``MALFORMED_FUNCTION_CALL`` instead.
    """
    names: dict[int, str] = {}
    arguments: dict[int, list[str]] = {}
    for chunk in reply.chunks:
        if isinstance(chunk, ToolCallChunk):
            if chunk.name is not None:
                names.setdefault(chunk.index, chunk.name)
            arguments.setdefault(chunk.index, []).append(chunk.arguments)
    parts: list[dict[str, Any]] = []
    for index in sorted(arguments):
        text = "".join(arguments[index]).strip() or "{}"
        try:
            args = json.loads(text)
        except ValueError:
            return None
        if not isinstance(args, dict):
            return None
        parts.append({"functionCall": {"name": names.get(index, ""), "args": args}})
    if parts:
        parts[0]["thoughtSignature"] = thought_signature(sequence)
    return parts


def sse_event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\r\n\r\n"


def response_chunks(reply: Reply, *, model: str, sequence: int) -> list[dict[str, Any]]:
    """Every ``GenerateContentResponse`` of ``reply``'s stream, in order.

    Faults are the server's business; ``omit_done`` drops the final chunk here.
    """
    base = {"modelVersion": model, "responseId": f"fake-response-{sequence}"}

    def chunk(candidate: dict[str, Any], *, final: bool = False) -> dict[str, Any]:
        payload: dict[str, Any] = {"candidates": [{**candidate, "index": 0}]}
        if reply.usage is not None:
            payload["usageMetadata"] = usage_metadata(reply.usage, final=final)
        return {**payload, **base}

    def content(*parts: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"parts": list(parts), "role": "model"}}

    calls = function_call_parts(reply, sequence=sequence)
    chunks: list[dict[str, Any]] = []
    calls_sent = False
    for item in reply.chunks:
        if isinstance(item, TextChunk):
            chunks.append(chunk(content({"text": item.text})))
        elif isinstance(item, ThinkingChunk):
            chunks.append(chunk(content({"text": item.text, "thought": True})))
        elif isinstance(item, ToolCallChunk) and not calls_sent and calls:
            chunks.append(chunk(content(*calls)))
            calls_sent = True
    if calls is None:
        final = {
            "finishReason": "MALFORMED_FUNCTION_CALL",
            "finishMessage": "Malformed function call: the arguments are not a JSON object",
        }
    else:
        final = {**content({"text": ""}), "finishReason": finish_reason(reply)}
    if not reply.omit_done:
        chunks.append(chunk(final, final=True))
    return chunks


def generate_content_body(reply: Reply, *, model: str, sequence: int) -> dict[str, Any]:
    """The non-streamed answer: text joined into one part, then the calls."""
    text = "".join(item.text for item in reply.chunks if isinstance(item, TextChunk))
    calls = function_call_parts(reply, sequence=sequence)
    thought = [{"text": reply.thinking, "thought": True}] if reply.thinking else []
    parts = thought + ([{"text": text}] if text else []) + (calls or [])
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    candidate["finishReason"] = "MALFORMED_FUNCTION_CALL" if calls is None else finish_reason(reply)
    body: dict[str, Any] = {"candidates": [{**candidate, "index": 0}]}
    if reply.usage is not None:
        body["usageMetadata"] = usage_metadata(reply.usage)
    return {**body, "modelVersion": model, "responseId": f"fake-response-{sequence}"}


@attrs.frozen
class GeminiGenerateContentDialect:
    """``POST /v1beta/models/{model}:streamGenerateContent`` (and ``:generateContent``).

    The version prefix is optional (``/v1`` is also taken, so ``FakeLLMServer.base_url``
    works). ``require_thought_signatures=False`` accepts histories without signatures, as
    Gemini 2.5 does.
    """

    require_thought_signatures: bool = True

    def matches(self, path: str) -> bool:
        return PATH.fullmatch(path) is not None

    def check(self, request: RecordedRequest) -> str | None:
        return check_request(
            request.body, require_thought_signatures=self.require_thought_signatures
        )

    def render_reply(
        self, reply: Reply, request: RecordedRequest, *, sequence: int, created: int
    ) -> StreamResponse | PlainResponse:
        match = PATH.fullmatch(request.path)
        assert match is not None  # the server only sends requests this dialect matches
        model = match["model"].removeprefix("models/")
        if match["method"] == "generateContent":
            return json_response(200, generate_content_body(reply, model=model, sequence=sequence))
        chunks = response_chunks(reply, model=model, sequence=sequence)
        if "alt=sse" not in request.query.split("&"):
            # Without alt=sse Google streams one JSON array; sent whole here.
            return json_response(200, chunks)
        headers: Headers = (
            ("content-type", "text/event-stream"),
            ("x-content-type-options", "nosniff"),
        )
        return StreamResponse(headers, tuple(sse_event(chunk) for chunk in chunks))

    def render_error(self, error: HttpError) -> PlainResponse:
        headers = retry_after_headers(error.retry_after)
        default = error_body(error.status, retry_after=error.retry_after)
        return error_payload_response(error, default, headers)

    def error(self, status: int, message: str) -> PlainResponse:
        return json_response(status, error_body(status, message))
