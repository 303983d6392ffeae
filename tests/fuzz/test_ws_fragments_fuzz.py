"""Fragmented, oversized and broken WebSocket messages against a live ``/acp``.

Each case opens its own connection and sends one message cut into random fragments (text
frame, then continuation frames): a valid ``initialize`` must be answered, a message over
``max_frame_bytes`` must close with 1009, and invalid UTF-8 (often split across two fragments)
must close with 1007. Between cases the server must go on serving.
"""

from __future__ import annotations

import contextlib
import json
import os
import random

import trio

from tests.e2e.conftest import Home, home
from tests.fuzz.profiles import MODE
from tests.server.client import RawWsClient, running_server

__all__ = ["home"]

MAX_FRAME = 4096
CASES = {"quick": 60, "full": 1_000}[MODE]
SEED = {"quick": 20_261_205, "full": int.from_bytes(os.urandom(4))}[MODE]


def frame(opcode: int, payload: bytes, *, fin: bool) -> bytes:
    """One client frame, masked with a zero key (the payload goes as is)."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        length = bytes([0x80 | n])
    elif n < 1 << 16:
        length = bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        length = bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return bytes([first]) + length + b"\0\0\0\0" + payload


def fragments(rng: random.Random, payload: bytes) -> bytes:
    """``payload`` as a text message in 1 to 8 fragments cut at random bytes."""
    cuts = sorted(rng.sample(range(1, len(payload)), min(rng.randint(0, 7), len(payload) - 1)))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
    return b"".join(
        frame(1 if i == 0 else 0, piece, fin=i == len(pieces) - 1) for i, piece in enumerate(pieces)
    )


def initialize(request_id: int, padding: int) -> bytes:
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {"protocolVersion": 1, "clientCapabilities": {}, "_meta": {"p": "é" * padding}},
    }
    return json.dumps(message, ensure_ascii=False).encode()


async def outcome(url: str, data: bytes) -> str | int:
    """The reply's id, or the close code."""
    async with RawWsClient.open(url, "/acp") as raw:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await raw.stream.send_all(data)
        with trio.fail_after(10):
            text = await raw.receive_text()
            while text is None and raw.close_code is None and not raw.ended:
                text = await raw.receive_text()
    if text is not None:
        return str(json.loads(text)["id"])
    assert raw.close_code is not None, "the connection ended without a close frame"
    return raw.close_code


async def test_fragmented_oversized_and_broken_messages(home: Home) -> None:
    rng = random.Random(SEED)
    seen: dict[str, int] = {"ok": 0, "1009": 0, "1007": 0}
    async with running_server(home, f"max_frame_bytes = {MAX_FRAME}") as server:
        for case in range(CASES):
            kind = rng.choice(["ok", "1009", "1007"])
            if kind == "ok":
                data = fragments(rng, initialize(case, rng.randint(0, 1000)))
            elif kind == "1009":
                data = fragments(rng, initialize(case, rng.randint(MAX_FRAME, 4 * MAX_FRAME)))
            else:
                good = initialize(case, rng.randint(0, 500))
                at = rng.randint(1, len(good) - 1)
                bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
                data = fragments(rng, good[:at] + bad + good[at:])
            result = await outcome(server.ws_url, data)
            expected = str(case) if kind == "ok" else int(kind)
            assert result == expected, (case, kind, SEED)
            seen[kind] += 1
        assert await outcome(server.ws_url, frame(1, initialize(-1, 0), fin=True)) == "-1"
    assert all(count > 0 for count in seen.values()), seen
