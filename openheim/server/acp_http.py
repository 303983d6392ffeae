"""``/acp`` over plain HTTP requests (the RFD's Streamable HTTP form), beside the WebSocket.

- ``POST /acp``, one JSON-RPC message (``application/json``): ``initialize`` without an
  ``Acp-Connection-Id`` makes a connection and answers ``200`` with the answer in the body and
  the id in ``Acp-Connection-Id``; any other message needs that header (and ``Acp-Session-Id``
  for session-scoped methods) and answers ``202`` at once, its answer coming on a stream.
- ``GET /acp`` (``Accept: text/event-stream``) with ``Acp-Connection-Id`` opens the connection's
  SSE stream; with ``Acp-Session-Id`` too, that session's stream. An idle stream gets a
  ``: keepalive`` comment every ``sse_keepalive`` seconds, so proxies keep it open.
- ``DELETE /acp`` ends the connection (``202``).

Refusals are ``{"error", "code"}`` JSON, as in the REST API: 400 (a header missing, bad JSON),
401 (token), 403 (Origin/Host), 404 (a connection or session this tenant does not have), 405,
406, 413 (a body over ``max_frame_bytes``), 415, 429, 501 (a batch), 503 (shutting down).
Tokens, Origin and Host are checked as for ``/ws``, but the token only as ``Authorization:
Bearer`` (an HTTP client can always set it). Cookies are neither set nor needed: every
connection lives in this process.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import trio

from openheim.acp.codec import Message, Request, to_json
from openheim.acp.outbox import Outbox
from openheim.foundation.errors import OpenheimError
from openheim.server.acp_http_connection import HttpConnection, HttpConnections
from openheim.server.acp_http_core import (
    CONNECTION_HEADER,
    EVENT_STREAM,
    KEEPALIVE,
    HttpRefusal,
    json_body,
    read_post,
    read_stream,
    require_connection,
    sse_event,
    unknown_session,
    well_formed_session_id,
)
from openheim.server.auth import bearer_token, refusal
from openheim.server.state import ServerState

log = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

_JSON = (b"content-type", b"application/json")


async def serve_acp_http(
    state: ServerState, scope: Mapping[str, Any], receive: Receive, send: Send
) -> None:
    """One HTTP request to ``/acp``."""
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }
    try:
        tenant = _admit(state, headers)
        match scope["method"]:
            case "POST":
                await _post(state, tenant, headers, receive, send)
            case "GET":
                await _get(state, tenant, headers, receive, send)
            case "DELETE":
                _connections(state).find(require_connection(headers), tenant).delete()
                await _respond(send, 202)
            case _:
                raise HttpRefusal(405, "method_not_allowed", "/acp takes GET, POST and DELETE")
    except HttpRefusal as refused:
        extra: list[tuple[bytes, bytes]] = [_JSON]
        if refused.status == 401:
            extra.append((b"www-authenticate", b"Bearer"))
        elif refused.status == 405:
            extra.append((b"allow", b"GET, POST, DELETE"))
        await _respond(send, refused.status, json_body(refused.body()), extra)


def _admit(state: ServerState, headers: Mapping[str, str]) -> str:
    """The request's tenant, after the checks every face makes."""
    why = refusal(state.access, origin=headers.get("origin"), host=headers.get("host"))
    if why is not None:
        raise HttpRefusal(403, "forbidden", why)
    if state.closing:
        raise HttpRefusal(503, "shutting_down", "the server is shutting down")
    tenant = state.access.tenant_for(bearer_token(headers.get("authorization")))
    if tenant is None:
        raise HttpRefusal(
            401, "unauthorized", "missing or unknown token: send Authorization: Bearer <token>"
        )
    return tenant


def _connections(state: ServerState) -> HttpConnections:
    assert state.acp_http is not None, "open_server opens the HTTP connections"
    return state.acp_http


async def _respond(send: Send, status: int, body: bytes = b"", headers: Headers = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise HttpRefusal(400, "incomplete", "the client left before the body ended")
        chunk: bytes = event.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpRefusal(
                413, "too_large", f"a message may have {limit} bytes ([server] max_frame_bytes)"
            )
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)


async def _check_session(connection: HttpConnection, session_id: str) -> None:
    """404 unless the session is this connection's, or the tenant's (live or stored): a client
    may open a session's stream before loading it."""
    if connection.router.knows(session_id):
        return
    tenant = connection.tenant
    if well_formed_session_id(session_id):
        if tenant.registry.get(session_id) is not None:
            return
        try:
            await tenant.runtime.store.load(session_id)
            return
        except OpenheimError:
            pass
    raise unknown_session()


async def _post(
    state: ServerState, tenant: str, headers: Mapping[str, str], receive: Receive, send: Send
) -> None:
    post = read_post(headers, await _read_body(receive, state.config.server.max_frame_bytes))
    if post.initialize:
        assert isinstance(post.message, Request)
        connection = await _connections(state).start(
            await state.tenants.get(tenant), state.connection_settings, state.connections
        )
        answer = await connection.initialize(post.message)
        id_header = (CONNECTION_HEADER.encode(), connection.id.encode())
        await _respond(send, 200, json_body(to_json(answer)), [_JSON, id_header])
        return
    assert post.connection_id is not None
    connection = _connections(state).find(post.connection_id, tenant)
    if post.session_id is not None:
        await _check_session(connection, post.session_id)
    await connection.post(post.message, post.session_id)
    await _respond(send, 202)


async def _get(
    state: ServerState, tenant: str, headers: Mapping[str, str], receive: Receive, send: Send
) -> None:
    if headers.get("upgrade", "").lower() == "websocket":  # hypercorn routes real upgrades
        raise HttpRefusal(400, "bad_upgrade", "a WebSocket upgrade needs HTTP/1.1 Upgrade")
    connection_id, stream = read_stream(headers)
    connection = _connections(state).find(connection_id, tenant)
    if stream is not None:
        await _check_session(connection, stream)
    keepalive = state.connection_settings.sse_keepalive
    async with connection.reader(stream) as events:
        start = [
            (b"content-type", EVENT_STREAM.encode()),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),  # nginx: pass events through at once
        ]
        await send({"type": "http.response.start", "status": 200, "headers": start})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_until_disconnect, receive, nursery.cancel_scope)
            await _pump(events, send, keepalive)
            nursery.cancel_scope.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _pump(events: Outbox[Message], send: Send, keepalive: float) -> None:
    """Write what is queued, or a keepalive comment after ``keepalive`` idle seconds, until
    the connection seals its outboxes. One event per body chunk: the ACP SDK's HTTP client
    handles events that share a chunk out of order (a load's answer before its replay)."""
    while True:
        bodies = [KEEPALIVE]
        with trio.move_on_after(keepalive):
            try:
                bodies = [sse_event(message) for message in await events.take()]
            except trio.EndOfChannel:
                return
        for body in bodies:
            await send({"type": "http.response.body", "body": body, "more_body": True})


async def _until_disconnect(receive: Receive, stop: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stop.cancel()
