"""JSON-RPC 2.0 over newline-delimited JSON, without I/O (the ACP stdio framing).

Bytes go in (``LineDecoder.feed``), typed messages come out; typed messages go in (``encode``),
one line of bytes comes out. Transports own the sockets and pipes; the WebSocket face reuses
``parse_message`` and ``encode_text`` with one message per frame instead of per line.

Choices where JSON-RPC leaves room:

- **Batches** (a top-level array) are not used by ACP: the whole batch gets *one* ``-32600``
  error with ``id: null``, and none of its elements is processed.
- A **malformed response** (no ``method``, but a ``result`` or ``error`` member) is reported
  and never answered: replying to a response could make two peers loop forever.
- Request ids may be strings, integers or ``null``; fractions and booleans are invalid.
- Unknown members are ignored; ``params`` is passed on whole, ``_meta`` included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Generic, TypeAlias, TypeVar

import attrs

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800
RESOURCE_NOT_FOUND = -32002

#: ACP's Python SDK reads lines of up to 50 MiB; a file sent through ``fs/*`` may be that big.
DEFAULT_MAX_LINE_BYTES = 50 * 1024 * 1024

RequestId: TypeAlias = str | int | None


class _Absent:
    """Marks an error without ``data`` (``None`` would be sent as ``"data": null``)."""

    def __repr__(self) -> str:
        return "ABSENT"


_ABSENT: Any = _Absent()


class RpcError(Exception):
    """A JSON-RPC error object; raise it from a handler to answer with this error."""

    def __init__(self, code: int, message: str, data: Any = _ABSENT) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not _ABSENT:
            error["data"] = self.data
        return error

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RpcError) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.code, self.message))


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


# --- messages ----------------------------------------------------------------------------------


@attrs.frozen
class Request:
    id: RequestId
    method: str
    params: Any = None


@attrs.frozen
class Notification:
    method: str
    params: Any = None


@attrs.frozen
class Response:
    id: RequestId
    result: Any = None


@attrs.frozen
class ErrorResponse:
    id: RequestId
    error: RpcError


@attrs.frozen
class BadMessage:
    """Input that is not a valid message; ``respond`` says whether the peer gets ``error``.

    ``id`` is the offending message's id when it had a usable one, else ``None`` (sent as
    ``null``, as JSON-RPC asks for parse errors and unreadable requests).
    """

    error: RpcError
    id: RequestId = None
    respond: bool = True

    def reply(self) -> ErrorResponse:
        return ErrorResponse(self.id, self.error)


Message: TypeAlias = Request | Notification | Response | ErrorResponse
Incoming: TypeAlias = Message | BadMessage


# --- parsing -----------------------------------------------------------------------------------


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or (type(value) is int)


def parse_message(value: Any) -> Incoming:
    """Classify one decoded JSON value as a message, or say what is wrong with it."""
    if isinstance(value, list):
        return BadMessage(RpcError(INVALID_REQUEST, "Invalid Request: batches are not supported"))
    if not isinstance(value, dict):
        kind = type(value).__name__ if value is not None else "null"
        return BadMessage(
            RpcError(INVALID_REQUEST, f"Invalid Request: expected a JSON object, got {kind}")
        )
    raw_id = value.get("id")
    usable_id = raw_id if _valid_id(raw_id) else None
    if value.get("jsonrpc") != "2.0":
        return BadMessage(
            RpcError(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"'),
            usable_id,
            respond="method" in value or not _looks_like_response(value),
        )
    if "method" in value:
        return _parse_call(value, raw_id, usable_id)
    if _looks_like_response(value):
        return _parse_response(value, raw_id)
    return BadMessage(
        RpcError(INVALID_REQUEST, 'Invalid Request: no "method", "result" or "error" member'),
        usable_id,
    )


def _looks_like_response(value: dict[str, Any]) -> bool:
    return "result" in value or "error" in value


def _parse_call(value: dict[str, Any], raw_id: Any, usable_id: RequestId) -> Incoming:
    method = value["method"]
    if not isinstance(method, str):
        return BadMessage(
            RpcError(INVALID_REQUEST, 'Invalid Request: "method" must be a string'), usable_id
        )
    if "id" in value and not _valid_id(raw_id):
        return BadMessage(
            RpcError(INVALID_REQUEST, 'Invalid Request: "id" must be a string, an integer or null')
        )
    params = value.get("params")
    if params is not None and not isinstance(params, dict | list):
        return BadMessage(
            RpcError(INVALID_REQUEST, 'Invalid Request: "params" must be an object or an array'),
            usable_id,
            respond="id" in value,
        )
    if "id" in value:
        return Request(raw_id, method, params)
    return Notification(method, params)


def _parse_response(value: dict[str, Any], raw_id: Any) -> Incoming:
    def bad(problem: str) -> BadMessage:
        error = RpcError(INVALID_REQUEST, f"Invalid response: {problem}")
        return BadMessage(error, raw_id if _valid_id(raw_id) else None, respond=False)

    if "id" not in value or not _valid_id(raw_id):
        return bad('"id" must be a string, an integer or null')
    if "error" in value:
        if "result" in value:
            return bad('both "result" and "error"')
        error = value["error"]
        if (
            not isinstance(error, dict)
            or type(error.get("code")) is not int
            or not isinstance(error.get("message"), str)
        ):
            return bad('"error" must be {"code": integer, "message": string}')
        data = error.get("data", _ABSENT)
        return ErrorResponse(raw_id, RpcError(error["code"], error["message"], data))
    return Response(raw_id, value["result"])


def parse_text(text: str | bytes) -> Incoming:
    """One serialized message (a stdio line, a WebSocket text frame)."""
    try:
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return BadMessage(RpcError(PARSE_ERROR, f"Parse error: {_describe(exc)}"))
    except RecursionError:
        return BadMessage(RpcError(PARSE_ERROR, "Parse error: nested too deeply"))
    except ValueError:  # an integer with more digits than int() takes (sys.int_info)
        return BadMessage(RpcError(PARSE_ERROR, "Parse error: number too large"))
    return parse_message(value)


def _describe(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    return "not valid UTF-8"


class LineDecoder:
    """Splits a byte stream into lines and parses each; ``\\r\\n`` and ``\\n`` both end a line.

    Blank lines are skipped. A line longer than ``max_line_bytes`` is dropped whole (up to its
    newline) and reported once as a parse error, so one oversized message cannot exhaust memory
    and the messages after it still get through.
    """

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[Incoming]:
        """Messages completed by ``data``; a partial line waits for the next call."""
        out: list[Incoming] = []
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                self._append(data[start:], out)
                return out
            self._append(data[start:newline], out)
            self._end_line(out)
            start = newline + 1

    def close(self) -> list[Incoming]:
        """End of input: a last line without a newline still counts."""
        out: list[Incoming] = []
        self._end_line(out)
        return out

    def _append(self, piece: bytes, out: list[Incoming]) -> None:
        if self._skipping or not piece:
            return
        if len(self._buffer) + len(piece) > self.max_line_bytes:
            self._buffer.clear()
            self._skipping = True
            out.append(
                BadMessage(
                    RpcError(
                        PARSE_ERROR,
                        f"Parse error: message longer than {self.max_line_bytes} bytes; dropped",
                    )
                )
            )
            return
        self._buffer += piece

    def _end_line(self, out: list[Incoming]) -> None:
        if self._skipping:
            self._skipping = False
            return
        line = bytes(self._buffer).rstrip(b"\r")
        self._buffer.clear()
        if line.strip():
            out.append(parse_text(line))


# --- encoding ----------------------------------------------------------------------------------


def to_json(message: Message) -> dict[str, Any]:
    if isinstance(message, Request):
        data: dict[str, Any] = {"jsonrpc": "2.0", "id": message.id, "method": message.method}
        if message.params is not None:
            data["params"] = message.params
        return data
    if isinstance(message, Notification):
        data = {"jsonrpc": "2.0", "method": message.method}
        if message.params is not None:
            data["params"] = message.params
        return data
    if isinstance(message, Response):
        return {"jsonrpc": "2.0", "id": message.id, "result": message.result}
    return {"jsonrpc": "2.0", "id": message.id, "error": message.error.to_json()}


def dumps_text(value: Any) -> str:
    """Compact JSON that is valid UTF-8 text, as a frame or a line must be.

    Strings are sent as they are, except when one holds a lone surrogate (a peer's
    ``"\\ud800"`` echoed back): then the text uses ``\\u`` escapes, which JSON allows.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(value, separators=(",", ":"))
    return text


def encode_text(message: Message) -> str:
    """One message as compact JSON; ``json.dumps`` escapes newlines inside strings."""
    return dumps_text(to_json(message))


def encode(message: Message) -> bytes:
    """One message as a ``\\n``-terminated UTF-8 line (the stdio framing)."""
    return (encode_text(message) + "\n").encode("utf-8")


# --- requests we send --------------------------------------------------------------------------

W = TypeVar("W")


@attrs.define
class _Pending(Generic[W]):
    method: str
    waiter: W
    tag: str | None


class Outgoing(Generic[W]):
    """Ids for our own requests, and who waits for each answer.

    ``W`` is whatever the transport wakes up (a channel, an event); this class never waits.
    ``tag`` groups requests (by ACP session) so they can be abandoned together on a cancel.
    """

    def __init__(self) -> None:
        self._next = 0
        self._pending: dict[RequestId, _Pending[W]] = {}

    def start(self, method: str, params: Any, waiter: W, tag: str | None = None) -> Request:
        self._next += 1
        self._pending[self._next] = _Pending(method, waiter, tag)
        return Request(self._next, method, params)

    def match(self, message: Response | ErrorResponse) -> W | None:
        """The waiter of the request this answers; ``None`` for an unknown or late answer."""
        pending = self._pending.pop(message.id, None)
        return None if pending is None else pending.waiter

    def is_pending(self, request_id: RequestId) -> bool:
        return request_id in self._pending

    def forget(self, request_id: RequestId) -> None:
        self._pending.pop(request_id, None)

    def tagged(self, tag: str) -> Iterator[tuple[RequestId, W]]:
        """Pending requests with this tag (a snapshot: safe to ``forget`` while iterating)."""
        return iter([(rid, p.waiter) for rid, p in self._pending.items() if p.tag == tag])

    def all(self) -> Iterator[tuple[RequestId, W]]:
        return iter([(rid, p.waiter) for rid, p in self._pending.items()])

    def __len__(self) -> int:
        return len(self._pending)
