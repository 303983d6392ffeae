"""Pure helpers for reading HTTP error responses, shared by every provider dialect."""

from __future__ import annotations

import http
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from openheim.foundation.errors import ProviderError

RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_BODY_MESSAGE = 500


def is_retryable_status(status: int) -> bool:
    """Timeouts, conflicts, rate limits and every server error (incl. 529) may pass later."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up case-insensitively, whatever kind of mapping the caller has."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date.

    An HTTP-date is measured against ``now`` (default: the current time, the one clock read
    here); a date in the past means "retry now" (0.0). Garbage gives ``None``.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value[0].isdigit() or value[0] in "+-.":
        return _non_negative_number(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT
        when = when.replace(tzinfo=UTC)
    now = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def retry_after_from_headers(
    headers: Mapping[str, str], *, now: datetime | None = None
) -> float | None:
    """The delay a response asks for: ``retry-after-ms`` (OpenAI, more precise) first."""
    millis = _non_negative_number(get_header(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000
    return parse_retry_after(get_header(headers, "retry-after"), now=now)


def _non_negative_number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def error_message_from_body(status: int, body: bytes) -> str:
    """A one-line message for an error response.

    ``{"error": {"message": ...}}`` is what OpenAI, Anthropic and Gemini all send; otherwise
    the body text itself (proxies send HTML or plain text), else the status's reason phrase.
    """
    text = body.decode("utf-8", errors="replace")
    message = _json_error_message(text)
    if message is None:
        message = " ".join(text.split())
    if not message:
        try:
            message = http.HTTPStatus(status).phrase
        except ValueError:
            message = "HTTP error"
    return truncate(message, MAX_BODY_MESSAGE)


def _json_error_message(text: str) -> str | None:
    try:
        payload: Any = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    if isinstance(payload, list) and len(payload) == 1:  # some gateways wrap it in a list
        payload = payload[0]
    if not isinstance(payload, dict):
        return None
    error = payload.get("error", payload)
    if isinstance(error, str):  # Ollama: {"error": "model not found"}
        message: Any = error
    elif isinstance(error, dict):
        message = error.get("message")
    else:
        return None
    if not isinstance(message, str) or not message.strip():
        return None
    return " ".join(message.split())


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def api_base(url: str) -> str:
    """A configured ``api_base`` as the dialects join paths onto it: no trailing slash."""
    return url.rstrip("/")


def http_error(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
) -> ProviderError:
    """A failed response as OpenAI-shaped providers report it: the body's message, retryable
    by status, with ``Retry-After``; ``now`` only matters for an HTTP-date one."""
    return ProviderError(
        error_message_from_body(status, body),
        provider=provider,
        status=status,
        retryable=is_retryable_status(status),
        retry_after=retry_after_from_headers(headers, now=now),
    )


def token_count(value: Any) -> int:
    """A usage field as a count: anything but a non-negative integer counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


#: Characters of a bad stream payload an error message quotes.
STREAM_QUOTE_LIMIT = 200


def stream_event_object(data: str, event: str | None, provider: str) -> dict[str, Any]:
    """A typed SSE event's JSON object (Anthropic's and the Responses API's streams). A
    non-JSON ``error`` event is the provider's own message; other garbage is named, briefly."""
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        if event == "error":
            raise ProviderError(
                " ".join(data.split()) or "error event", provider=provider
            ) from None
        quoted = truncate(data, STREAM_QUOTE_LIMIT)
        raise ProviderError(f"malformed JSON in stream: {quoted!r}", provider=provider) from None
    if not isinstance(payload, dict):
        quoted = truncate(data, STREAM_QUOTE_LIMIT)
        raise ProviderError(f"unexpected stream event: {quoted!r}", provider=provider)
    return payload
