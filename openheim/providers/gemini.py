"""The Google Gemini ``streamGenerateContent`` wire format (sans-IO).

Gemini differs from OpenAI in ways that shape this module: every SSE event is a whole
``GenerateContentResponse`` and there is no end marker (the stream ends after the chunk with a
``finishReason``); function calls arrive whole and usually without ids; ``STOP`` is also the
reason after calls; a call's ``thoughtSignature`` must go back unchanged; and ``parameters``
take an OpenAPI subset that rejects common JSON Schema keywords, so schemas are reduced.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import attrs

from openheim.errors import ProviderError
from openheim.models import Message, Role, ToolCall, ToolDefinition, Usage
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    HttpRequest,
    ProviderEvent,
    StreamEnd,
    TextDelta,
)
from openheim.providers.http import (
    MAX_BODY_MESSAGE,
    error_message_from_body,
    is_retryable_status,
    retry_after_from_headers,
    truncate,
)
from openheim.providers.sse import SSEDecoder, SSEEventTooLarge

_FINISH_REASONS = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.REFUSAL,
    "RECITATION": FinishReason.REFUSAL,
    "BLOCKLIST": FinishReason.REFUSAL,
    "PROHIBITED_CONTENT": FinishReason.REFUSAL,
    "SPII": FinishReason.REFUSAL,
    "IMAGE_SAFETY": FinishReason.REFUSAL,
}
MALFORMED_FUNCTION_CALL = "MALFORMED_FUNCTION_CALL"
_RETRYABLE_STATUSES = frozenset(
    {"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"}
)
_QUOTE_LIMIT = 200
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)s\s*")


def _strip_trailing_slash(url: str) -> str:
    return url.rstrip("/")


@attrs.frozen
class GeminiDialect:
    """The Gemini API (``api_base`` like ``https://generativelanguage.googleapis.com/v1beta``)."""

    api_base: str = attrs.field(converter=_strip_trailing_slash)
    provider_name: str = "gemini"

    @property
    def name(self) -> str:
        return self.provider_name

    def build_request(self, request: ChatRequest, api_key: str | None) -> HttpRequest:
        # The key goes in a header: the documented ``?key=`` form leaks it into logs.
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if api_key:
            headers["x-goog-api-key"] = api_key
        body: dict[str, Any] = {"contents": messages_to_gemini(request.messages)}
        system = [
            {"text": message.content}
            for message in request.messages
            if message.role is Role.SYSTEM and message.content
        ]
        if system:
            body["systemInstruction"] = {"parts": system}
        if request.tools:
            declarations = [tool_to_gemini(tool) for tool in request.tools]
            body["tools"] = [{"functionDeclarations": declarations}]
        if request.max_tokens is not None:
            body["generationConfig"] = {"maxOutputTokens": request.max_tokens}
        url = f"{self.api_base}/models/{model_path(request.model)}:streamGenerateContent?alt=sse"
        return HttpRequest("POST", url, headers, body)

    def new_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(self.provider_name)

    def parse_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> ProviderError:
        """``now`` only matters for an HTTP-date ``Retry-After``; default is the current time.

        Gemini says how long to wait in a ``google.rpc.RetryInfo`` detail rather than a
        header, so that is the fallback when no header gives a delay.
        """
        error = _google_error(body)
        message = _google_error_message(error) if error is not None else None
        retry_after = retry_after_from_headers(headers, now=now)
        if retry_after is None and error is not None:
            retry_after = _retry_delay(error)
        return ProviderError(
            message or error_message_from_body(status, body),
            provider=self.provider_name,
            status=status,
            retryable=is_retryable_status(status),
            retry_after=retry_after,
        )


def model_path(model: str) -> str:
    """``model`` as one URL path segment; a pasted ``models/`` prefix is tolerated."""
    return quote(model.removeprefix("models/"), safe="")


# --- requests -------------------------------------------------------------------------------


def messages_to_gemini(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Our conversation as Gemini ``contents``; system messages are left to the caller.

    Tool results become ``functionResponse`` parts of a ``user`` content, and consecutive
    contents of one role are merged: Gemini wants all responses to one model turn together,
    one per call.
    """
    names = {
        call.id: call.name
        for message in messages
        if message.role is Role.ASSISTANT
        for call in message.tool_calls
    }
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        if message.role is Role.ASSISTANT:
            role, parts = "model", _model_parts(message)
        elif message.role is Role.TOOL:
            name = message.tool_name or names.get(message.tool_call_id or "", "")
            key = "error" if message.is_error else "result"
            response = {"name": name, "response": {key: message.content or ""}}
            role, parts = "user", [{"functionResponse": response}]
        else:
            role, parts = "user", [{"text": message.content}] if message.content else []
        if not parts:
            continue  # Gemini rejects empty contents and empty text parts
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _model_parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"text": message.content})
    for call in message.tool_calls:
        parts.append(tool_call_to_gemini(call))
    return parts


def tool_call_to_gemini(call: ToolCall) -> dict[str, Any]:
    """A ``functionCall`` part; its ``thoughtSignature`` goes back exactly as it came."""
    try:
        args = call.parsed_arguments()
    except ValueError:
        args = {}  # Gemini only takes an object; the tool result already told the model why
    part: dict[str, Any] = {"functionCall": {"name": call.name, "args": args}}
    if call.signature is not None:
        part["thoughtSignature"] = call.signature
    return part


def tool_to_gemini(tool: ToolDefinition) -> dict[str, Any]:
    """A function declaration; ``parameters`` is left out for a tool that takes none.

    Older Gemini models reject an object schema without properties at the top level
    ("properties: should be non-empty for OBJECT type"), and leaving it out is always valid.
    """
    declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
    parameters = to_gemini_schema(tool.parameters)
    if parameters.get("properties"):
        declaration["parameters"] = parameters
    return declaration


# --- schema reduction -----------------------------------------------------------------------

_SCHEMA_SCALARS = (
    "title",
    "description",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "pattern",
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}
_REF_PREFIXES = ("#/$defs/", "#/definitions/")


def to_gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` (JSON Schema) reduced to the OpenAPI subset Gemini's ``parameters`` take.

    Gemini rejects the whole request for one unknown keyword (``$schema``,
    ``additionalProperties``, ``$ref``, ...), a ``type`` list, a non-string ``enum`` value, an
    array without ``items`` or (Gemini 3) a schema without a type. So unknown keywords are
    dropped, local ``$ref``s inlined (a cycle becomes a plain object), ``oneOf`` becomes
    ``anyOf``, ``allOf`` is merged, ``null`` becomes ``nullable``, ``const`` a one-value enum,
    non-string enums move into the description, and a missing type is inferred (``string``
    when nothing says otherwise).
    """
    if not isinstance(schema, Mapping):
        return {"type": "object"}
    return _SchemaReducer(schema).reduce(schema)


@attrs.define
class _SchemaReducer:
    root: Mapping[str, Any]
    resolving: list[str] = attrs.Factory(list)

    def reduce(self, node: Any) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            return {"type": "string"}  # ``true`` / garbage: anything goes, say a string
        node = dict(node)
        ref = node.pop("$ref", None)
        if isinstance(ref, str):
            return self._reduce_ref(ref, node)
        if isinstance(node.get("allOf"), list):
            node = _merge_all_of(node)
        branches = node.pop("anyOf", None)
        one_of = node.pop("oneOf", None)
        if not isinstance(branches, list):
            branches = one_of if isinstance(one_of, list) else None
        if branches is not None and not all(map(_constrains_only, branches)):
            return self._reduce_any_of(branches, node)
        # Branches that only add constraints (``anyOf: [{required: [a]}, {required: [b]}]``)
        # cannot be said in Gemini's subset; the schema without them is the closest.
        return self._reduce_plain(node)

    def _reduce_ref(self, ref: str, siblings: dict[str, Any]) -> dict[str, Any]:
        target = self._resolve(ref)
        if target is None or ref in self.resolving:
            # A cycle or a remote ref cannot be inlined; what it names is most likely an object.
            return self.reduce({"type": "object", **siblings})
        self.resolving.append(ref)
        try:
            return self.reduce({**target, **siblings})  # siblings (description) win
        finally:
            self.resolving.pop()

    def _resolve(self, ref: str) -> Mapping[str, Any] | None:
        if ref == "#":
            return self.root
        for prefix in _REF_PREFIXES:
            if ref.startswith(prefix):
                defs = self.root.get(prefix[2:-1])
                target = defs.get(ref[len(prefix) :]) if isinstance(defs, Mapping) else None
                return target if isinstance(target, Mapping) else None
        return None

    def _reduce_any_of(self, branches: list[Any], node: dict[str, Any]) -> dict[str, Any]:
        nullable = node.get("nullable") is True
        kept = []
        for branch in branches:
            if isinstance(branch, Mapping) and branch.get("type") == "null":
                nullable = True
            else:
                kept.append(self.reduce(branch))
        node.pop("type", None)  # the branches say what the types are
        outer = self._reduce_plain(node, typed=False)
        if len(kept) == 1:
            result = {**kept[0], **outer}
        elif kept:
            result = {"anyOf": kept, **outer}
        else:
            result = {"type": "string", **outer}
        if nullable:
            result["nullable"] = True
        return result

    def _reduce_plain(self, node: dict[str, Any], *, typed: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        kind, nullable, extra_types = _split_type(node.get("type"))
        if extra_types:  # ``type: [string, integer]``: Gemini takes one type, or anyOf
            others = {key: value for key, value in node.items() if key != "type"}
            if nullable:
                others["nullable"] = True
            return self._reduce_any_of([{"type": t} for t in extra_types], others)
        if node.get("nullable") is True:
            nullable = True
        for key in _SCHEMA_SCALARS:
            value = node.get(key)
            if key in ("title", "description", "pattern"):
                if isinstance(value, str):
                    out[key] = value
            elif _is_number(value):
                out[key] = value
        enum = node.get("enum")
        if "const" in node and not isinstance(enum, list):
            enum = [node["const"]]
        if isinstance(enum, list):
            if None in enum:
                nullable = True
            values = [value for value in enum if value is not None]
            strings = all(isinstance(value, str) for value in values)
            if values and strings and kind in (None, "string"):
                out["enum"] = values
                kind = "string"
            elif values:  # Gemini's enum holds strings only; say it in words instead
                listed = ", ".join(json.dumps(value) for value in values)
                note = f"One of: {listed}."
                described = out.get("description")
                out["description"] = f"{described} {note}" if described else note
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            out["properties"] = {
                str(name): self.reduce(value) for name, value in properties.items()
            }
            kind = kind or "object"
            required = node.get("required")
            if isinstance(required, list):
                names = [name for name in required if name in out["properties"]]
                if names:
                    out["required"] = list(dict.fromkeys(names))
        items = node.get("items")
        if kind == "array" or isinstance(items, Mapping):
            kind = "array"
            out["items"] = self.reduce(items) if isinstance(items, Mapping) else {"type": "string"}
        if kind is None and typed:  # Gemini 3 rejects a schema without a type
            kind = "number" if "minimum" in out or "maximum" in out else "string"
        fmt = node.get("format")
        if kind in _FORMATS and isinstance(fmt, str) and fmt in _FORMATS[kind]:
            out["format"] = fmt
        if kind is not None:
            out = {"type": kind, **out}
        if nullable:
            out["nullable"] = True
        return out


def _split_type(raw: Any) -> tuple[str | None, bool, list[str]]:
    """``(type, nullable, types)``: ``types`` is set only when several non-null types remain."""
    if isinstance(raw, str):
        if raw == "null":
            return None, True, []
        return (raw if raw in _TYPES else None), False, []
    if isinstance(raw, list):
        nullable = "null" in raw
        kinds = list(dict.fromkeys(t for t in raw if isinstance(t, str) and t in _TYPES))
        if len(kinds) == 1:
            return kinds[0], nullable, []
        if len(kinds) > 1:
            return None, nullable, kinds
        return None, nullable, []
    return None, False, []


_SHAPE_KEYWORDS = frozenset(
    {"type", "properties", "items", "enum", "const", "$ref", "anyOf", "oneOf", "allOf"}
)


def _constrains_only(branch: Any) -> bool:
    return isinstance(branch, Mapping) and not _SHAPE_KEYWORDS.intersection(branch)


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """``allOf`` folded into its parent: properties and required united, the rest layered."""
    merged = {key: value for key, value in node.items() if key != "allOf"}
    for part in node["allOf"]:
        if not isinstance(part, Mapping):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- responses ------------------------------------------------------------------------------


class GeminiStreamDecoder:
    """Turns a ``streamGenerateContent?alt=sse`` body into provider events.

    With no end marker in the format, the one ``StreamEnd`` is emitted by ``close()``; a body
    that ends without any ``finishReason`` was cut off. ``id_tag`` makes the ids synthesized
    for calls (Gemini rarely sends any) unique beyond this stream; it is random by default.
    """

    def __init__(self, provider_name: str = "gemini", *, id_tag: str | None = None) -> None:
        self._provider = provider_name
        self._id_tag = id_tag if id_tag is not None else secrets.token_hex(4)
        self._sse = SSEDecoder()
        self._text: list[str] = []
        self._calls: list[ToolCall] = []
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._ended = False

    def feed(self, data: bytes) -> list[ProviderEvent]:
        if self._ended:
            return []
        events: list[ProviderEvent] = []
        try:
            completed = self._sse.feed(data)
        except SSEEventTooLarge as exc:
            raise self._error(f"the stream sent {exc}; not buffered further") from None
        for sse in completed:
            self._handle_chunk(sse.data, events)
        return events

    def close(self) -> list[ProviderEvent]:
        if self._ended:
            return []
        self._ended = True
        events: list[ProviderEvent] = []
        for sse in self._sse.close():
            self._handle_chunk(sse.data, events)
        if self._finish_reason is None:
            raise self._error("stream ended unexpectedly before a finishReason")
        calls = tuple(self._calls)
        events.append(
            StreamEnd(
                text="".join(self._text),
                tool_calls=calls,
                finish_reason=_finish_reason(self._finish_reason, bool(calls)),
                usage=self._usage,
            )
        )
        return events

    def _handle_chunk(self, data: str, events: list[ProviderEvent]) -> None:
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise self._error(
                f"malformed JSON in stream: {truncate(data, _QUOTE_LIMIT)!r}"
            ) from None
        if not isinstance(chunk, dict):
            raise self._error(f"unexpected stream chunk: {truncate(data, _QUOTE_LIMIT)!r}")
        if chunk.get("error") is not None:
            raise self._stream_error(chunk["error"])
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):  # cumulative: the latest is the total so far
            self._usage = _parse_usage(usage)
        candidates = chunk.get("candidates")
        candidate = _first_candidate(candidates)
        if candidate is None:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                raise self._blocked(feedback)
            return
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        if isinstance(parts, list):
            for part in parts:
                if isinstance(part, dict):
                    self._handle_part(part, events)
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason:
            if reason == MALFORMED_FUNCTION_CALL:
                detail = candidate.get("finishMessage")
                suffix = f": {_one_line(detail)}" if isinstance(detail, str) and detail else ""
                raise self._error(f"the model produced a malformed function call{suffix}")
            self._finish_reason = reason

    def _handle_part(self, part: dict[str, Any], events: list[ProviderEvent]) -> None:
        call = part.get("functionCall")
        if isinstance(call, dict):
            self._add_call(call, part.get("thoughtSignature"))
            return
        text = part.get("text")
        if isinstance(text, str) and text and part.get("thought") is not True:
            self._text.append(text)
            events.append(TextDelta(text))

    def _add_call(self, call: dict[str, Any], signature: Any) -> None:
        index = len(self._calls)
        raw_id = call.get("id")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else f"call_{self._id_tag}_{index}"
        name = call.get("name") if isinstance(call.get("name"), str) else ""
        args = call.get("args")
        arguments = json.dumps(args if isinstance(args, dict) else {}, ensure_ascii=False)
        sig = signature if isinstance(signature, str) and signature else None
        self._calls.append(ToolCall(call_id, name, arguments, signature=sig))

    def _blocked(self, feedback: dict[str, Any]) -> ProviderError:
        message = f"prompt blocked by Gemini: {feedback['blockReason']}"
        detail = feedback.get("blockReasonMessage")
        if isinstance(detail, str) and detail:
            message += f" ({_one_line(detail)})"
        return self._error(truncate(message, MAX_BODY_MESSAGE))

    def _stream_error(self, error: Any) -> ProviderError:
        if not isinstance(error, dict):
            text = _one_line(str(error)) or "unknown error in stream"
            return self._error(truncate(text, MAX_BODY_MESSAGE))
        code, status = error.get("code"), error.get("status")
        retryable = (isinstance(code, int) and is_retryable_status(code)) or (
            isinstance(status, str) and status in _RETRYABLE_STATUSES
        )
        message = _google_error_message(error) or "unknown error in stream"
        return ProviderError(
            message,
            provider=self._provider,
            retryable=retryable,
            retry_after=_retry_delay(error),
        )

    def _error(self, message: str) -> ProviderError:
        return ProviderError(message, provider=self._provider, retryable=False)


def _first_candidate(candidates: Any) -> dict[str, Any] | None:
    """Candidate 0: we never ask for more, and ``index`` may be left out."""
    if not isinstance(candidates, list):
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("index") in (0, None):
            return candidate
    return None


def _finish_reason(raw: str, has_calls: bool) -> FinishReason:
    """Normalise; Gemini says ``STOP`` after calls, so assembled calls mean TOOL_CALLS.

    A truncated or filtered response keeps its reason, as in the OpenAI dialect.
    """
    reason = _FINISH_REASONS.get(raw, FinishReason.OTHER)
    if has_calls and reason not in (FinishReason.LENGTH, FinishReason.REFUSAL):
        return FinishReason.TOOL_CALLS
    return reason


def _parse_usage(usage: dict[str, Any]) -> Usage:
    """``promptTokenCount`` already includes cached and is what is billed as input."""
    return Usage(
        input_tokens=_count(usage.get("promptTokenCount"))
        + _count(usage.get("toolUsePromptTokenCount")),
        output_tokens=_count(usage.get("candidatesTokenCount"))
        + _count(usage.get("thoughtsTokenCount")),
        cache_read_tokens=_count(usage.get("cachedContentTokenCount")),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# --- errors ---------------------------------------------------------------------------------


def _google_error(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of a Google API error body (also inside a one-element list)."""
    try:
        payload: Any = json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    if isinstance(payload, list) and len(payload) == 1:  # the non-SSE stream wraps it
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else None


def _google_error_message(error: dict[str, Any]) -> str | None:
    """``STATUS: message``: the status (``RESOURCE_EXHAUSTED``) says what kind of failure."""
    message = error.get("message")
    status = error.get("status")
    text = _one_line(message) if isinstance(message, str) else ""
    if isinstance(status, str) and status:
        text = f"{status}: {text}" if text else status
    return truncate(text, MAX_BODY_MESSAGE) if text else None


def _retry_delay(error: dict[str, Any]) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail's ``retryDelay`` (``"13s"``)."""
    details = error.get("details")
    if not isinstance(details, list):
        return None
    for detail in details:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and (match := _DURATION.fullmatch(delay)):
            return float(match.group(1))
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
