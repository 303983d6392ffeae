"""HTTP/1.1 status lines that carry their reason phrase.

Hypercorn 0.18 hands h11 its responses without a reason, so every line reads ``HTTP/1.1 404 ``.
RFC 9112 allows that, but proxies, curl users and log readers expect ``404 Not Found``. The
phrase is the standard one for the code (``http.HTTPStatus``); an unknown code keeps none.

``install()`` swaps the protocol class hypercorn's connection wrapper instantiates; ``serve``
calls it once before listening, beside ``ws_frames.install()``.
"""

from __future__ import annotations

from http import HTTPStatus

import h11
import hypercorn.protocol as hypercorn_protocol
from hypercorn.protocol.h11 import H11Protocol, H11SendableEvent


def reason_phrase(status_code: int) -> bytes:
    """The standard phrase for ``status_code``, or ``b""`` for a code the RFCs do not name."""
    try:
        return HTTPStatus(status_code).phrase.encode("ascii")
    except ValueError:
        return b""


def with_reason(
    event: h11.Response | h11.InformationalResponse,
) -> h11.Response | h11.InformationalResponse:
    """``event`` with its reason phrase filled in when it has none."""
    if event.reason:
        return event
    return type(event)(
        status_code=event.status_code,
        headers=event.headers,
        http_version=event.http_version,
        reason=reason_phrase(event.status_code),
    )


class ReasonedH11Protocol(H11Protocol):
    """``H11Protocol`` whose status lines name their status."""

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if isinstance(event, (h11.Response, h11.InformationalResponse)):
            event = with_reason(event)
        await super()._send_h11_event(event)


def install() -> None:
    """Make hypercorn's connections speak HTTP/1.1 through ``ReasonedH11Protocol``."""
    hypercorn_protocol.H11Protocol = ReasonedH11Protocol  # type: ignore[misc]
