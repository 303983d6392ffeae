"""The JSON-RPC codec with bytes alone: framing, parsing, errors, encoding, id tracking."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openheim.acp.codec import (
    INVALID_REQUEST,
    PARSE_ERROR,
    BadMessage,
    ErrorResponse,
    Incoming,
    LineDecoder,
    Notification,
    Outgoing,
    Request,
    Response,
    RpcError,
    encode,
    encode_text,
    parse_message,
    parse_text,
)

STREAM = (
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}\n'
    b"\n"
    b'{"jsonrpc":"2.0","method":"session/cancel","params":{"sessionId":"s"}}\r\n'
    b'  \r\n{"jsonrpc":"2.0","id":"a\\nb","result":{"text":"h\xc3\xa9llo"}}\n'
    b'{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"Method not found"}}\n'
)
EXPECTED: list[Incoming] = [
    Request(1, "initialize", {"protocolVersion": 1}),
    Notification("session/cancel", {"sessionId": "s"}),
    Response("a\nb", {"text": "héllo"}),
    ErrorResponse(7, RpcError(-32601, "Method not found")),
]


def feed_all(decoder: LineDecoder, pieces: list[bytes]) -> list[Incoming]:
    out: list[Incoming] = []
    for piece in pieces:
        out.extend(decoder.feed(piece))
    return out + decoder.close()


def test_stream_split_at_every_byte_gives_the_same_messages() -> None:
    assert feed_all(LineDecoder(), [STREAM]) == EXPECTED
    for cut in range(len(STREAM) + 1):
        assert feed_all(LineDecoder(), [STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut
    assert feed_all(LineDecoder(), [bytes([b]) for b in STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=8))
def test_stream_split_anywhere_many_times(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert feed_all(LineDecoder(), pieces) == EXPECTED


def test_last_line_without_newline_counts_at_close() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b'{"jsonrpc":"2.0","method":"x"}') == []
    assert decoder.close() == [Notification("x")]
    assert decoder.close() == []


def test_overlong_line_is_dropped_whole_and_reported_once() -> None:
    decoder = LineDecoder(max_line_bytes=40)
    long_line = b'{"jsonrpc":"2.0","method":"' + b"x" * 100 + b'"}\n'
    good = b'{"jsonrpc":"2.0","method":"ok"}\n'
    out = feed_all(decoder, [long_line[:30], long_line[30:70], long_line[70:] + good])
    assert len(out) == 2
    assert isinstance(out[0], BadMessage) and out[0].error.code == PARSE_ERROR
    assert "longer than 40 bytes" in out[0].error.message and out[0].id is None
    assert out[1] == Notification("ok")


def test_line_exactly_at_the_limit_is_accepted() -> None:
    line = b'{"jsonrpc":"2.0","method":"ok"}'
    assert LineDecoder(max_line_bytes=len(line)).feed(line + b"\n") == [Notification("ok")]


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"jsonrpc":"2.0",', b'{"a":1}}', b"\xff\xfe{}", b"[" * 100_000],
)
def test_parse_errors_reply_with_null_id(raw: bytes) -> None:
    message = parse_text(raw)
    assert isinstance(message, BadMessage)
    assert message.error.code == PARSE_ERROR and message.id is None and message.respond
    assert message.reply() == ErrorResponse(None, message.error)


@pytest.mark.parametrize(
    ("value", "reply_id"),
    [
        (42, None),
        ("hello", None),
        (None, None),
        (True, None),
        ({"id": 1, "method": "x"}, 1),  # no jsonrpc
        ({"jsonrpc": "1.0", "id": "a", "method": "x"}, "a"),
        ({"jsonrpc": "2.0", "id": 3, "method": 5}, 3),
        ({"jsonrpc": "2.0", "id": 4, "method": "x", "params": "text"}, 4),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "x"}, None),
        ({"jsonrpc": "2.0", "id": 1.0, "method": "x"}, None),
        ({"jsonrpc": "2.0", "id": True, "method": "x"}, None),
        ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "x"}, None),
        ({"jsonrpc": "2.0", "id": [1], "method": "x"}, None),
        ({"jsonrpc": "2.0", "id": 9}, 9),  # neither method nor result/error
    ],
)
def test_invalid_requests(value: Any, reply_id: Any) -> None:
    message = parse_message(value)
    assert isinstance(message, BadMessage) and message.respond
    assert message.error.code == INVALID_REQUEST
    assert message.id == reply_id


def test_a_batch_gets_one_error() -> None:
    message = parse_text(b'[{"jsonrpc":"2.0","id":1,"method":"initialize"}]')
    assert isinstance(message, BadMessage) and message.respond and message.id is None
    assert message.error == RpcError(INVALID_REQUEST, "Invalid Request: batches are not supported")


@pytest.mark.parametrize("request_id", ["abc", "", 0, -5, 2**63, None])
def test_request_ids_of_every_valid_type_round_trip(request_id: Any) -> None:
    line = encode(Request(request_id, "m", {"a": 1}))
    assert LineDecoder().feed(line) == [Request(request_id, "m", {"a": 1})]
    assert json.loads(line)["id"] == request_id


def test_notification_has_no_id_and_null_id_is_a_request() -> None:
    assert parse_message({"jsonrpc": "2.0", "method": "n"}) == Notification("n")
    assert parse_message({"jsonrpc": "2.0", "id": None, "method": "n"}) == Request(None, "n")


def test_unknown_members_are_ignored_and_meta_is_kept() -> None:
    value = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "m",
        "params": {"_meta": {"k": "v"}, "x": 1},
        "extra": True,
    }
    assert parse_message(value) == Request(1, "m", {"_meta": {"k": "v"}, "x": 1})


def test_responses() -> None:
    assert parse_message({"jsonrpc": "2.0", "id": 1, "result": None}) == Response(1, None)
    error = parse_message(
        {"jsonrpc": "2.0", "id": 2, "error": {"code": -1, "message": "m", "data": None}}
    )
    assert isinstance(error, ErrorResponse)
    assert error.error.to_json() == {"code": -1, "message": "m", "data": None}


@pytest.mark.parametrize(
    "value",
    [
        {"jsonrpc": "2.0", "result": 1},
        {"jsonrpc": "2.0", "id": 1.5, "result": 1},
        {"jsonrpc": "2.0", "id": 1, "result": 1, "error": {"code": 1, "message": "m"}},
        {"jsonrpc": "2.0", "id": 1, "error": "oops"},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": "1", "message": "m"}},
        {"jsonrpc": "1.0", "id": 1, "result": 1},
    ],
)
def test_malformed_responses_are_reported_but_never_answered(value: Any) -> None:
    message = parse_message(value)
    assert isinstance(message, BadMessage) and not message.respond


def test_encoding_is_one_compact_line() -> None:
    message = Notification("session/update", {"text": "two\nlines\r\u2028 é ✓", "n": [1, 2]})
    line = encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and b"\r" not in line
    text = line.decode()
    assert "é ✓" in text and ", " not in text and ": " not in text
    assert parse_text(line) == message
    assert encode_text(message) == text[:-1]


def test_encoding_of_each_message_type() -> None:
    assert json.loads(encode(Request(1, "m"))) == {"jsonrpc": "2.0", "id": 1, "method": "m"}
    assert json.loads(encode(Response(None, None))) == {
        "jsonrpc": "2.0",
        "id": None,
        "result": None,
    }
    assert json.loads(encode(ErrorResponse(1, RpcError(-32603, "boom", {"why": 1})))) == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32603, "message": "boom", "data": {"why": 1}},
    }
    assert "data" not in json.loads(encode(ErrorResponse(1, RpcError(-1, "m"))))["error"]


def test_outgoing_hands_out_ids_and_matches_answers() -> None:
    outgoing: Outgoing[str] = Outgoing()
    first = outgoing.start("session/request_permission", {"a": 1}, "waiter-1", tag="s1")
    second = outgoing.start("fs/read_text_file", {}, "waiter-2", tag="s2")
    assert first == Request(1, "session/request_permission", {"a": 1})
    assert second.id == 2 and len(outgoing) == 2
    assert list(outgoing.tagged("s1")) == [(1, "waiter-1")]
    assert outgoing.match(Response(2, {})) == "waiter-2"
    assert outgoing.match(Response(2, {})) is None  # a second answer is late
    assert outgoing.match(ErrorResponse("1", RpcError(-1, "m"))) is None  # ids are exact
    assert outgoing.is_pending(1)
    outgoing.forget(1)
    assert not outgoing.is_pending(1) and len(outgoing) == 0
