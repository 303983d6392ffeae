"""Decoding Gemini's ``streamGenerateContent?alt=sse`` body (sans-IO), and Google's error
objects, which arrive both as a response body and inside the stream.

Every SSE event is a whole ``GenerateContentResponse`` with no end marker after the last, so
the stream ends after the chunk with a ``finishReason``; function calls arrive whole, usually
without ids.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Reasoning, ToolCall, Usage
from openheim.providers.base import (
    FinishReason,
    ProviderEvent,
    StreamEnd,
    TextDelta,
    ThinkingDelta,
)
from openheim.providers.http import MAX_BODY_MESSAGE, is_retryable_status, token_count, truncate
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
#: The ``Reasoning.format`` of thought parts this dialect produced and takes back.
REASONING_FORMAT = "gemini"
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)s\s*")


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
        self._thoughts: list[dict[str, Any]] = []  # thought parts, as they go back
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
                reasoning=self._reasoning(),
            )
        )
        return events

    def _reasoning(self) -> Reasoning | None:
        if not self._thoughts:
            return None
        text = "".join(part["text"] for part in self._thoughts)
        return Reasoning(text, REASONING_FORMAT, json.dumps(self._thoughts, ensure_ascii=False))

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
        if not isinstance(text, str):
            return
        if part.get("thought") is True:
            signature = part.get("thoughtSignature")
            if text or signature:  # a signature may come on a part of its own
                self._add_thought(text, signature)
            if text:
                events.append(ThinkingDelta(text))
        elif text:
            self._text.append(text)
            events.append(TextDelta(text))

    def _add_thought(self, text: str, signature: Any) -> None:
        """Keep a thought part to send back; streamed pieces join into one part, except that a
        part with a signature keeps its own (the signature belongs to that part)."""
        signed = isinstance(signature, str) and bool(signature)
        last = self._thoughts[-1] if self._thoughts else None
        if last is not None and not signed and "thoughtSignature" not in last:
            last["text"] += text
            return
        part: dict[str, Any] = {"text": text, "thought": True}
        if signed:
            part["thoughtSignature"] = signature
        self._thoughts.append(part)

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
        message = google_error_message(error) or "unknown error in stream"
        return ProviderError(
            message,
            provider=self._provider,
            retryable=retryable,
            retry_after=retry_delay(error),
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
        input_tokens=token_count(usage.get("promptTokenCount"))
        + token_count(usage.get("toolUsePromptTokenCount")),
        output_tokens=token_count(usage.get("candidatesTokenCount"))
        + token_count(usage.get("thoughtsTokenCount")),
        cache_read_tokens=token_count(usage.get("cachedContentTokenCount")),
    )


# --- errors ---------------------------------------------------------------------------------


def google_error(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of a Google API error body (also inside a one-element list)."""
    try:
        payload: Any = json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    if isinstance(payload, list) and len(payload) == 1:  # the non-SSE stream wraps it
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else None


def google_error_message(error: dict[str, Any]) -> str | None:
    """``STATUS: message``: the status (``RESOURCE_EXHAUSTED``) says what kind of failure."""
    message = error.get("message")
    status = error.get("status")
    text = _one_line(message) if isinstance(message, str) else ""
    if isinstance(status, str) and status:
        text = f"{status}: {text}" if text else status
    return truncate(text, MAX_BODY_MESSAGE) if text else None


def retry_delay(error: dict[str, Any]) -> float | None:
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
