"""The Streamable HTTP form of ``/acp`` without I/O: request rules, stream routing, SSE frames.

The ACP remote-transport RFD puts two forms on ``/acp``: a WebSocket (``ws.py``) and this one,
where the client POSTs each message and reads the agent's on long-lived SSE streams: one per
connection (``Acp-Connection-Id``) and one per session (plus ``Acp-Session-Id``). What a
request may carry is decided here by ``read_post``/``read_stream``/``read_delete`` (each raises
``HttpRefusal`` with the RFD's status), and which stream carries each outgoing message by
``StreamRouter``; ``acp_http`` does the I/O.

Routing (``StreamRouter``), after the RFD: answers to ``session/new``/``load``/``resume`` and to
requests without a session go on the connection stream; notifications and requests about a
session, and answers to POSTs that named one, go on that session's stream. A client can open a
session's stream only once it knows the session's id, and the ACP SDK opens it when a message
carrying the id arrives on the connection stream. So a session's messages go on the connection
stream until either its stream was opened, or the client was told the id there and the
answer that gave it the session (new, load, resume) is out; from then on they go to the
session's stream, buffered while it is not open. A loaded session whose replay told the client
its id thus keeps its replay before the load's answer, in one stream, in order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from openheim.acp.codec import (
    ErrorResponse,
    Incoming,
    Message,
    Request,
    RequestId,
    Response,
    dumps_text,
    encode_text,
    parse_message,
)
from openheim.foundation.errors import OpenheimError

CONNECTION_HEADER = "acp-connection-id"
SESSION_HEADER = "acp-session-id"
JSON = "application/json"
EVENT_STREAM = "text/event-stream"

#: Methods whose POST must name its session in ``Acp-Session-Id`` (the ones the ACP SDK
#: sends it with; a session-creating method cannot, and ``session/delete`` never needs it).
SESSION_SCOPED = frozenset(
    {
        "session/prompt",
        "session/cancel",
        "session/set_mode",
        "session/set_config_option",
        "session/close",
    }
)
#: Methods whose answer gives the client a session: always on the connection stream.
ESTABLISHING = frozenset({"session/new", "session/load", "session/resume", "session/fork"})

#: None is the connection stream, a session id that session's stream.
Stream: TypeAlias = str | None

KEEPALIVE = b": keepalive\n\n"


class HttpRefusal(OpenheimError):
    """A request ``/acp`` does not take: the HTTP status, and a code for the JSON body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def body(self) -> dict[str, str]:
        return {"error": str(self), "code": self.code}


# --- requests ----------------------------------------------------------------------------------


@attrs.frozen
class Post:
    """One POSTed message and the ids its headers carry."""

    message: Incoming
    connection_id: str | None
    session_id: str | None

    @property
    def initialize(self) -> bool:
        """An ``initialize`` without a connection: it makes one and is answered in the body."""
        message = self.message
        return (
            self.connection_id is None
            and isinstance(message, Request)
            and message.method == "initialize"
        )


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def read_post(headers: Mapping[str, str], body: bytes) -> Post:
    """Check a POST against the RFD; raises ``HttpRefusal`` (400, 415, 501)."""
    if _media_type(headers.get("content-type")) != JSON:
        raise HttpRefusal(415, "unsupported_media_type", "POST /acp takes application/json")
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HttpRefusal(400, "parse_error", f"the body is not JSON: {exc}") from None
    if isinstance(value, list):
        raise HttpRefusal(501, "batch_not_supported", "JSON-RPC batches are not supported")
    if not isinstance(value, dict):
        raise HttpRefusal(400, "invalid_request", "the body must be one JSON-RPC message")
    post = Post(
        parse_message(value),
        headers.get(CONNECTION_HEADER) or None,
        headers.get(SESSION_HEADER) or None,
    )
    if post.initialize:
        return post
    if post.connection_id is None:
        raise HttpRefusal(
            400,
            "missing_connection_id",
            "missing Acp-Connection-Id; fix: POST initialize first and send the id it returns",
        )
    method = value.get("method")
    if method in SESSION_SCOPED and post.session_id is None:
        raise HttpRefusal(400, "missing_session_id", f"{method} needs an Acp-Session-Id header")
    params = value.get("params")
    named = params.get("sessionId") if isinstance(params, dict) else None
    if post.session_id is not None and named is not None and named != post.session_id:
        raise HttpRefusal(
            400, "session_mismatch", "Acp-Session-Id differs from the message's sessionId"
        )
    return post


def read_stream(headers: Mapping[str, str]) -> tuple[str, Stream]:
    """A GET without upgrade opens an SSE stream: (connection id, session id or None)."""
    accept = headers.get("accept", "")
    if EVENT_STREAM not in accept and "*/*" not in accept:
        raise HttpRefusal(406, "not_acceptable", "GET /acp streams text/event-stream")
    return require_connection(headers), headers.get(SESSION_HEADER) or None


def require_connection(headers: Mapping[str, str]) -> str:
    connection_id = headers.get(CONNECTION_HEADER)
    if not connection_id:
        raise HttpRefusal(400, "missing_connection_id", "missing Acp-Connection-Id header")
    return connection_id


def well_formed_session_id(session_id: str) -> bool:
    try:
        uuid.UUID(session_id)
    except ValueError:
        return False
    return True


def unknown_connection() -> HttpRefusal:
    return HttpRefusal(
        404, "unknown_connection", "unknown Acp-Connection-Id; fix: POST initialize again"
    )


def unknown_session() -> HttpRefusal:
    return HttpRefusal(404, "unknown_session", "unknown Acp-Session-Id for this connection")


# --- SSE -----------------------------------------------------------------------------------


def sse_event(message: Message) -> bytes:
    """One message as one SSE event: ``encode_text`` escapes newlines, so one ``data:`` line."""
    return b"data: " + encode_text(message).encode("utf-8") + b"\n\n"


def json_body(value: Any) -> bytes:
    return dumps_text(value).encode("utf-8")


# --- routing -------------------------------------------------------------------------------


def _session_of(params: Any) -> str | None:
    session_id = params.get("sessionId") if isinstance(params, dict) else None
    return session_id if isinstance(session_id, str) else None


@attrs.frozen
class _Awaited:
    """A client request we will answer: where the answer goes."""

    method: str
    #: The request's ``Acp-Session-Id``, or for a session-creating method its ``sessionId``.
    session_id: str | None


def _key(request_id: RequestId) -> str:
    """Ids as JSON text, so ``1`` and ``"1"`` stay apart."""
    return json.dumps(request_id)


class StreamRouter:
    """Which stream each message to the client goes on (see the module doc for the rules)."""

    def __init__(self) -> None:
        self._awaited: dict[str, _Awaited] = {}
        #: Sessions whose id went out on the connection stream.
        self._told: set[str] = set()
        #: Sessions whose creating answer (new, load, resume) is out.
        self._given: set[str] = set()
        #: Sessions whose messages go on their own stream.
        self._own: set[str] = set()

    def knows(self, session_id: str) -> bool:
        return session_id in self._told or session_id in self._given or session_id in self._own

    def request_in(self, request: Request, session_header: str | None) -> None:
        """A client request was posted: remember where its answer goes."""
        session_id = session_header
        if request.method in ESTABLISHING:
            session_id = _session_of(request.params)
        self._awaited[_key(request.id)] = _Awaited(request.method, session_id)

    def opened(self, session_id: str) -> None:
        """The client opened the session's stream: its messages go there from now on."""
        self._own.add(session_id)

    def route(self, message: Message) -> Stream:
        if isinstance(message, Response | ErrorResponse):
            awaited = self._awaited.pop(_key(message.id), None)
            if awaited is None:
                return None
            if awaited.method in ESTABLISHING:
                self._establish(awaited, message)
                return None
            return self._session(awaited.session_id)
        return self._session(_session_of(message.params))

    def _establish(self, awaited: _Awaited, answer: Response | ErrorResponse) -> None:
        if not isinstance(answer, Response):
            return
        session_id = _session_of(answer.result) or awaited.session_id
        if session_id is None:
            return
        if _session_of(answer.result) is not None:
            self._told.add(session_id)  # the answer itself tells it
        self._given.add(session_id)
        if session_id in self._told:
            self._own.add(session_id)

    def _session(self, session_id: str | None) -> Stream:
        if session_id is None:
            return None
        if session_id in self._own:
            return session_id
        self._told.add(session_id)
        if session_id in self._given:
            self._own.add(session_id)  # told now, on the connection stream: later ones go own
        return None
