"""ACP codec fuzz: any JSON value or byte string classifies as JSON-RPC 2.0 says; messages
round-trip through the stdio framing in any split.

The rules checked are JSON-RPC's, not the code's: requests are always answered, responses
never, notifications only when the codec documents it (never for a valid one), a parse error
has ``id: null``, and an error's ``id`` is the message's own id or ``null``.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from openheim.acp.codec import (
    INVALID_REQUEST,
    PARSE_ERROR,
    BadMessage,
    ErrorResponse,
    LineDecoder,
    Message,
    Notification,
    Request,
    Response,
    RpcError,
    encode,
    parse_message,
    parse_text,
    to_json,
)
from tests.fuzz.profiles import FUZZ, no_hang
from tests.fuzz.strategies import any_text, hostile_values, json_values, mutated_json


def valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or type(value) is int


def same(a: Any, b: Any) -> bool:
    """JSON equality that tells ``1`` from ``1.0`` and ``True`` (ids must echo exactly)."""
    return type(a) is type(b) and a == b


_ids = st.none() | st.integers(-(2**63), 2**63) | st.text(max_size=8)
_params = st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=4)
_params |= st.lists(json_values, max_size=3)

requests = st.builds(Request, _ids, st.text(max_size=12), _params)
notifications = st.builds(Notification, st.text(max_size=12), _params)
responses = st.builds(Response, _ids, json_values)
errors = st.builds(
    ErrorResponse,
    _ids,
    st.builds(RpcError, st.integers(-(2**31), 2**31), st.text(max_size=12), json_values),
)
messages = st.one_of(requests, notifications, responses, errors)

_members = ("jsonrpc", "id", "method", "params", "result", "error", "code", "message", "data")


@st.composite
def message_like(draw: st.DrawFn) -> Any:
    """A valid message with a few members replaced, dropped or added, or any JSON value."""
    if draw(st.booleans()):
        return draw(hostile_values)
    return draw(mutated_json(to_json(draw(messages)), _members, hostile_values))


def check_classification(value: Any, incoming: Any) -> None:
    is_object = isinstance(value, dict)
    if isinstance(incoming, BadMessage):
        assert incoming.error.code == INVALID_REQUEST
        assert isinstance(incoming.error.message, str) and incoming.error.message
        # The id echoed is the message's own (valid) id, or null.
        assert incoming.id is None or (is_object and same(incoming.id, value.get("id")))
        assert valid_id(incoming.id)
        if is_object and valid_id(value.get("id")):  # echoed whenever it is usable
            assert same(incoming.id, value.get("id"))
        if not incoming.respond:  # only answers and notifications go unanswered
            assert is_object
            assert ("result" in value or "error" in value) or "id" not in value
            assert not ("method" in value and "id" in value)
        if not is_object:
            assert incoming.respond and incoming.id is None
        elif "method" in value and "id" in value:
            assert incoming.respond  # a request is always answered
        return
    assert is_object and value.get("jsonrpc") == "2.0"
    if isinstance(incoming, Request | Notification):
        assert isinstance(value["method"], str) and incoming.method == value["method"]
        assert ("id" in value) is isinstance(incoming, Request)
        params = value.get("params")
        assert params is None or isinstance(params, dict | list)
        assert incoming.params == params
        if isinstance(incoming, Request):
            assert valid_id(value["id"]) and same(incoming.id, value["id"])
    else:
        assert isinstance(incoming, Response | ErrorResponse)
        assert "method" not in value and "id" in value
        assert valid_id(value["id"]) and same(incoming.id, value["id"])
        if isinstance(incoming, ErrorResponse):
            assert "result" not in value
            assert type(value["error"]["code"]) is int
            assert incoming.error.code == value["error"]["code"]
        else:
            assert incoming.result == value["result"]


@FUZZ
@example(value=[{"jsonrpc": "2.0", "id": 1, "method": "initialize"}])
@example(value={"jsonrpc": "2.0", "id": True, "method": "x"})
@example(value={"jsonrpc": "2.0", "id": 1.0, "result": {}})
@example(value={"jsonrpc": "2.0", "method": "x", "params": 3})
@given(value=message_like())
def test_any_value_is_a_message_or_a_proper_error(value: Any) -> None:
    check_classification(value, parse_message(value))


def json_or_none(raw: str | bytes) -> tuple[bool, Any]:
    """What a JSON parser makes of ``raw``: (parsed?, value)."""
    try:
        return True, json.loads(raw)
    except (ValueError, RecursionError):
        return False, None


_texts = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    message_like().map(json.dumps),
    st.sampled_from(
        [
            "1" + "0" * 5_000,  # more digits than Python's int() takes
            '{"jsonrpc": "2.0", "id": 1' + "0" * 5_000 + ', "method": "x"}',
            "[" * 5_000,
            '{"a":' * 5_000,
            b"\xff\xfe{}",
            b"\x00\x00\x00{",
            "NaN",
            '{"jsonrpc": "2.0", "id": Infinity, "method": "x"}',
        ]
    ),
)


@FUZZ
@example(raw="1" + "0" * 5_000)
@given(raw=_texts)
def test_any_text_parses_or_is_a_parse_error_with_null_id(raw: str | bytes) -> None:
    with no_hang():
        incoming = parse_text(raw)
    parsed, value = json_or_none(raw)
    if not parsed:
        assert isinstance(incoming, BadMessage)
        assert incoming.error.code == PARSE_ERROR
        assert incoming.id is None and incoming.respond
        return
    check_classification(value, incoming)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed(decoder: LineDecoder, chunks: list[bytes]) -> list[Any]:
    with no_hang():
        return [m for chunk in chunks for m in decoder.feed(chunk)] + decoder.close()


_strings_with_surrogates = st.dictionaries(any_text, any_text, max_size=3)


@FUZZ
@example(batch=[Request(1, "\ud800", {"\udcff": "\ud83d"})], crlf=False, cuts=[])
@given(
    batch=st.lists(
        messages | st.builds(Notification, any_text, _strings_with_surrogates), max_size=6
    ),
    crlf=st.booleans(),
    cuts=st.lists(st.integers(0, 4_000), max_size=10),
)
def test_messages_round_trip_through_lines_in_any_split(
    batch: list[Message], crlf: bool, cuts: list[int]
) -> None:
    """What we encode is valid UTF-8 JSON (lone surrogates escaped) and parses back equal."""
    raw = b"".join(encode(message) for message in batch)
    raw.decode("utf-8")  # strict: a peer must be able to read every byte we send
    if crlf:
        raw = raw.replace(b"\n", b"\r\n")
    assert feed(LineDecoder(), split(raw, cuts)) == batch


@FUZZ
@given(
    raw=st.binary(max_size=300) | _texts.map(lambda t: t if isinstance(t, bytes) else t.encode()),
    limit=st.integers(1, 64),
    cuts=st.lists(st.integers(0, 300), max_size=8),
)
def test_line_decoder_on_any_bytes(raw: bytes, limit: int, cuts: list[int]) -> None:
    """Splits do not matter; an oversized line is one parse error and the rest still parse."""
    got = feed(LineDecoder(limit), split(raw, cuts))
    expected: list[Any] = []
    for line in raw.split(b"\n"):
        if len(line) > limit:
            expected.append("too long")
        elif line.rstrip(b"\r").strip():
            expected.append(parse_text(line.rstrip(b"\r")))
    for message, want in zip(got, expected, strict=True):
        if want == "too long":
            assert isinstance(message, BadMessage) and message.error.code == PARSE_ERROR
            assert f"longer than {limit} bytes" in message.error.message
        else:
            assert message == want
