"""``StreamRouter`` and the request rules, without I/O: which stream each message goes on."""

from __future__ import annotations

import pytest

from openheim.acp.codec import ErrorResponse, Notification, Request, Response, RpcError
from openheim.server.acp_http_core import HttpRefusal, StreamRouter, read_post, read_stream

S = "5f0c8c1e-3f43-4d8f-9d57-0a6f3b1f9d10"
JSON = {"content-type": "application/json"}


def update(session_id: str = S) -> Notification:
    return Notification("session/update", {"sessionId": session_id, "update": {}})


def test_a_new_session_streams_on_its_own_from_its_answer() -> None:
    router = StreamRouter()
    router.request_in(Request(2, "session/new", {"cwd": "/w"}), None)
    assert router.route(Response(2, {"sessionId": S})) is None
    assert router.route(update()) == S  # waits for the session's stream
    router.request_in(Request(3, "session/prompt", {"sessionId": S}), S)
    router.request_in(Request(4, "session/list", {}), None)
    assert router.route(Request(1, "session/request_permission", {"sessionId": S})) == S
    assert router.route(Response(4, {"sessions": []})) is None
    assert router.route(Response(3, {"stopReason": "end_turn"})) == S


def test_a_load_replays_where_the_client_already_reads() -> None:
    # The ACP SDK: no session stream yet, so the replay tells it the id on the connection
    # stream, and it opens the session's stream; what follows the answer waits there.
    router = StreamRouter()
    router.request_in(Request(2, "session/load", {"sessionId": S}), None)
    assert router.route(update()) is None
    assert router.route(update()) is None
    assert router.route(Response(2, {})) is None
    assert router.route(update()) == S


def test_a_load_without_replay_tells_the_id_once_on_the_connection_stream() -> None:
    router = StreamRouter()
    router.request_in(Request(2, "session/load", {"sessionId": S}), S)
    assert router.route(Response(2, {})) is None
    assert router.route(update()) is None  # the first message about it tells the client
    assert router.route(update()) == S


def test_a_session_stream_opened_before_the_load_gets_the_replay() -> None:
    # The RFD's resume flow: the client opens the session's stream first.
    router = StreamRouter()
    router.opened(S)
    router.request_in(Request(2, "session/load", {"sessionId": S}), S)
    assert router.route(update()) == S
    assert router.route(Response(2, {})) is None


def test_a_failed_load_gives_no_session() -> None:
    router = StreamRouter()
    router.request_in(Request(2, "session/load", {"sessionId": S}), None)
    assert router.route(ErrorResponse(2, RpcError(-32002, "not found"))) is None
    assert not router.knows(S)
    assert router.route(update()) is None


def test_ids_of_different_types_stay_apart() -> None:
    router = StreamRouter()
    router.request_in(Request(1, "session/prompt", {"sessionId": S}), S)
    router.opened(S)
    router.request_in(Request("1", "session/list", {}), None)
    assert router.route(Response("1", {})) is None
    assert router.route(Response(1, {})) == S


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b"{}", 415),
        ({"content-type": "application/json; charset=utf-8"}, b"[]", 501),
        (JSON, b"\xff", 400),
        (JSON, b'{"jsonrpc": "2.0", "id": 1, "method": "session/list"}', 400),
        (
            {**JSON, "acp-connection-id": "c"},
            b'{"jsonrpc": "2.0", "id": 1, "method": "session/prompt", "params": {}}',
            400,
        ),
    ],
)
def test_posts_the_rfd_refuses(headers: dict[str, str], body: bytes, status: int) -> None:
    with pytest.raises(HttpRefusal) as refused:
        read_post(headers, body)
    assert refused.value.status == status


def test_initialize_needs_no_connection_and_streams_need_one() -> None:
    post = read_post(JSON, b'{"jsonrpc": "2.0", "id": 0, "method": "initialize"}')
    assert post.initialize
    assert read_stream({"accept": "*/*", "acp-connection-id": "c"}) == ("c", None)
    with pytest.raises(HttpRefusal):
        read_stream({"accept": "text/event-stream"})
