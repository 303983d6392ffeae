"""The connection core with dicts alone: messages in, actions out; no trio, no sessions."""

from __future__ import annotations

from typing import Any

from openheim.acp.codec import ErrorResponse, Request, parse_message, to_json
from openheim.acp.connection import (
    AcpConnection,
    Action,
    CancelRequest,
    CancelSession,
    DeliverAnswer,
    RunRequest,
    SendMessage,
    cancelled_answer,
)

METHODS = ("initialize", "session/new", "session/prompt", "session/list")


def core(max_in_flight: int = 8) -> AcpConnection:
    return AcpConnection(METHODS, max_in_flight=max_in_flight)


def feed(connection: AcpConnection, message: dict[str, Any]) -> Action | None:
    return connection.receive(parse_message({"jsonrpc": "2.0", **message}))


def sent(action: Action | None) -> dict[str, Any]:
    assert isinstance(action, SendMessage), action
    return to_json(action.message)


def prompt(request_id: int, session_id: str) -> dict[str, Any]:
    params = {"sessionId": session_id, "prompt": [{"type": "text", "text": "hi"}]}
    return {"id": request_id, "method": "session/prompt", "params": params}


def initialized() -> AcpConnection:
    connection = core()
    action = feed(connection, {"id": 0, "method": "initialize", "params": {}})
    assert action == RunRequest(Request(0, "initialize", {}), inline=True)
    assert connection.initialized
    return connection


def test_only_initialize_is_served_before_initialize() -> None:
    connection = core()
    early = sent(feed(connection, {"id": 1, "method": "session/new", "params": {}}))
    assert early["error"] == {
        "code": -32600,
        "message": "session/new before initialize: send initialize first",
    }
    # A notification is ignored; an unknown method is left to the handler lookup (-32601).
    assert feed(connection, {"method": "session/cancel", "params": {"sessionId": "s"}}) is None
    unknown = feed(connection, {"id": 2, "method": "x/y"})
    assert isinstance(unknown, RunRequest) and not unknown.inline
    assert connection.in_flight == 1


def test_requests_past_the_bound_are_refused_at_once() -> None:
    connection = AcpConnection(METHODS, max_in_flight=2)
    feed(connection, {"id": 0, "method": "initialize"})
    for request_id in (1, 2):
        assert isinstance(
            feed(connection, {"id": request_id, "method": "session/list"}), RunRequest
        )
    refused = sent(feed(connection, {"id": 3, "method": "session/list"}))
    assert refused["error"]["message"] == "too many requests in flight (limit 2)"
    connection.finished(1)
    assert isinstance(feed(connection, {"id": 4, "method": "session/list"}), RunRequest)


def test_bad_messages_get_an_error_and_malformed_answers_are_dropped() -> None:
    connection = initialized()
    reply = sent(connection.receive(parse_message([1, 2])))
    assert reply["error"]["code"] == -32600 and reply["id"] is None
    assert feed(connection, {"id": 9, "result": {}}) is None  # answers nothing of ours


def test_prompts_get_tickets_in_arrival_order_once_attached() -> None:
    connection = initialized()
    unattached = feed(connection, prompt(1, "s"))
    assert isinstance(unattached, RunRequest) and unattached.ticket is None
    connection.attach("s")
    first, second = feed(connection, prompt(2, "s")), feed(connection, prompt(3, "s"))
    assert isinstance(first, RunRequest) and isinstance(second, RunRequest)
    assert first.ticket is not None and second.ticket is not None
    assert (first.ticket.number, second.ticket.number) == (0, 1)
    assert connection.may_run(first.ticket) and not connection.may_run(second.ticket)
    connection.release(first.ticket)
    assert connection.may_run(second.ticket)


def test_a_ticket_released_out_of_order_waits_for_those_before_it() -> None:
    connection = initialized()
    connection.attach("s")
    tickets = [connection.ticket("s") for _ in range(3)]
    connection.release(tickets[1])  # given up early (an invalid prompt)
    assert not connection.may_run(tickets[2])
    connection.release(tickets[0])
    assert connection.may_run(tickets[2])


def test_a_cancel_cancels_the_running_and_the_queued_prompts_not_later_ones() -> None:
    connection = initialized()
    connection.attach("s")
    running, queued = connection.ticket("s"), connection.ticket("s")
    asking = connection.start_request("session/request_permission", {}, tag="s")
    other = connection.start_request("fs/read_text_file", {}, tag="t")
    action = feed(connection, {"method": "session/cancel", "params": {"sessionId": "s"}})
    assert action == CancelSession("s", (asking.id,))
    assert connection.cancelled(running) and connection.cancelled(queued)
    assert not connection.cancelled(connection.ticket("s"))
    assert not connection.is_pending(asking.id) and connection.is_pending(other.id)
    # A cancel for a session this connection does not hold does nothing.
    assert feed(connection, {"method": "session/cancel", "params": {"sessionId": "x"}}) is None


def test_answers_reach_their_request_once() -> None:
    connection = initialized()
    request = connection.start_request("fs/read_text_file", {"path": "/a"})
    assert to_json(request)["method"] == "fs/read_text_file"
    answer = {"id": request.id, "result": {"content": "x"}}
    action = feed(connection, answer)
    assert isinstance(action, DeliverAnswer) and action.answer.id == request.id
    assert feed(connection, answer) is None  # a second answer is late


def test_closing_cancels_every_prompt_and_abandons_every_request() -> None:
    connection = initialized()
    connection.attach("a")
    connection.attach("b")
    tickets = [connection.ticket("a"), connection.ticket("b")]
    pending = [connection.start_request("m", {}, tag=tag) for tag in ("a", None)]
    assert connection.cancel_all() == ["a", "b"]
    assert all(connection.cancelled(ticket) for ticket in tickets)
    assert connection.abandon() == [request.id for request in pending]
    assert connection.abandon() == []
    woken = cancelled_answer(7)
    assert isinstance(woken, ErrorResponse) and woken.id == 7 and woken.error.code == -32800


def test_a_detached_session_lets_its_prompts_go_cancelled() -> None:
    connection = initialized()
    connection.attach("s")
    ticket = connection.ticket("s")
    connection.detach("s")
    assert connection.may_run(ticket) and connection.cancelled(ticket)
    assert connection.session_ids() == []


def test_cancel_request_names_a_running_request_and_cancels_one_prompt_only() -> None:
    connection = initialized()
    connection.attach("s")
    running, queued = feed(connection, prompt(1, "s")), feed(connection, prompt(2, "s"))
    assert isinstance(running, RunRequest) and isinstance(queued, RunRequest)
    assert running.ticket is not None and queued.ticket is not None
    listing = feed(connection, {"id": "x", "method": "session/list"})
    assert isinstance(listing, RunRequest)

    cancel = {"method": "$/cancel_request", "params": {"requestId": 2}}
    assert feed(connection, cancel) == CancelRequest(2, queued.ticket)
    assert connection.cancelled(queued.ticket) and not connection.cancelled(running.ticket)
    connection.release(running.ticket)
    assert connection.may_run(queued.ticket) and connection.cancelled(queued.ticket)

    cancel_list = {"method": "$/cancel_request", "params": {"requestId": "x"}}
    assert feed(connection, cancel_list) == CancelRequest("x", None)
    connection.finished("x")
    assert feed(connection, cancel_list) is None  # answered already: nothing to cancel
    for bad in (None, True, [1], {"requestId": None}):
        assert feed(connection, {"method": "$/cancel_request", "params": bad}) is None
