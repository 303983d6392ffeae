"""The contract between the fake server and each provider renderer (a *dialect*).

A dialect is sans-IO: it gets a recorded request and a script value and returns the bytes to
send. The server owns sockets, timing and faults, so adding Anthropic or Gemini means writing
one more dialect, not touching the server.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import attrs

from openheim.testing.script import HttpError, RecordedRequest, Reply

Headers = tuple[tuple[str, str], ...]

MALFORMED_EVENT = b"data: {not json\n\n"
"""What ``Reply.malformed_after`` inserts into a stream: an event whose data is not JSON."""

MALFORMED_BODY = b"{not json"
"""What ``Reply.malformed_after`` sends instead of a non-streamed JSON body."""


@attrs.frozen
class PlainResponse:
    """A whole response sent at once: errors and non-streamed answers."""

    status: int
    headers: Headers
    body: bytes


@attrs.frozen
class StreamResponse:
    """A streamed answer: ``events`` are complete SSE events, each flushed on its own."""

    headers: Headers
    events: tuple[bytes, ...]
    status: int = 200


def json_response(status: int, body: Any, headers: Headers = ()) -> PlainResponse:
    return PlainResponse(
        status, (("content-type", "application/json"), *headers), json.dumps(body).encode()
    )


def error_payload_response(error: HttpError, default_body: Any, headers: Headers) -> PlainResponse:
    """Render ``error`` with its own body if it has one, else the dialect's ``default_body``."""
    extra = (*headers, *error.headers.items())
    if isinstance(error.body, str):
        content_type = (("content-type", "text/plain; charset=utf-8"),)
        return PlainResponse(error.status, (*content_type, *extra), error.body.encode())
    body = default_body if error.body is None else error.body
    return json_response(error.status, body, extra)


def format_seconds(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds when it is whole, else a decimal."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def event_stream(events: tuple[bytes, ...], extra: Headers = ()) -> StreamResponse:
    """A streamed answer with the SSE headers every provider sends."""
    headers: Headers = (
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        *extra,
    )
    return StreamResponse(headers, events)


def retry_after_headers(retry_after: float | None, *, with_ms: bool = False) -> Headers:
    """``Retry-After`` (and OpenAI's ``retry-after-ms`` when ``with_ms``) for a wait, if any."""
    if retry_after is None:
        return ()
    seconds = (("retry-after", format_seconds(retry_after)),)
    if not with_ms:
        return seconds
    return (*seconds, ("retry-after-ms", str(round(retry_after * 1000))))


class Dialect(Protocol):
    """One provider's wire format, as the fake server needs it."""

    def matches(self, path: str) -> bool:
        """Whether requests to ``path`` speak this dialect."""
        ...

    def check(self, request: RecordedRequest) -> str | None:
        """Why a (JSON-parsed) request is invalid for this API, or ``None``."""
        ...

    def render_reply(
        self, reply: Reply, request: RecordedRequest, *, sequence: int, created: int
    ) -> StreamResponse | PlainResponse:
        """The answer to ``request``; ``sequence`` numbers response ids, ``created`` is Unix."""
        ...

    def render_error(self, error: HttpError) -> PlainResponse:
        """A scripted error response."""
        ...

    def error(self, status: int, message: str) -> PlainResponse:
        """An error the server itself raises (bad request, exhausted script, ...)."""
        ...
