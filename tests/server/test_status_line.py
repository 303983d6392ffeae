"""HTTP/1.1 status lines carry the standard reason phrase."""

from __future__ import annotations

import h11

from openheim.server.status_line import reason_phrase, with_reason


def test_known_codes_get_their_phrase() -> None:
    assert reason_phrase(200) == b"OK"
    assert reason_phrase(101) == b"Switching Protocols"
    assert reason_phrase(429) == b"Too Many Requests"
    assert reason_phrase(599) == b""


def test_a_phrase_already_set_is_kept() -> None:
    kept = h11.Response(status_code=404, headers=[], reason=b"Gone Fishing")
    assert with_reason(kept) is kept
    filled = with_reason(h11.Response(status_code=404, headers=[(b"content-length", b"0")]))
    assert filled.reason == b"Not Found"
    assert list(filled.headers) == [(b"content-length", b"0")]
