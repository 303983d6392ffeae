"""One ACP connection's bookkeeping as a state machine: messages in, actions out.

Everything about a connection that must be decided in arrival order lives here, with no I/O, no
clock and no tasks: whether the client has initialized, which requests may run and how many at
once, which of our own requests still wait for an answer, and, per attached session, the order
of its prompts and its cancel generation. ``AcpDispatcher`` feeds every decoded message to
``receive`` and carries out the action it returns; the tests feed it dicts.

Why prompts hold tickets: trio starts tasks in no fixed order, so a prompt's place in its
session's queue is taken while reading, before its task starts. A ``session/cancel`` bumps the
session's generation; a prompt whose ticket is of an older generation answers ``cancelled``,
which also cancels the prompts queued before the cancel arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import attrs

from openheim.acp.codec import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    REQUEST_CANCELLED,
    BadMessage,
    ErrorResponse,
    Incoming,
    Message,
    Notification,
    Outgoing,
    Request,
    RequestId,
    Response,
    RpcError,
)

log = logging.getLogger(__name__)


@attrs.frozen
class Ticket:
    """A prompt's place in its session's queue."""

    session_id: str
    number: int
    #: The session's cancel generation when the prompt arrived.
    generation: int


# --- actions ------------------------------------------------------------------------------------


@attrs.frozen
class SendMessage:
    """Send this to the client as it is."""

    message: Message


@attrs.frozen
class RunRequest:
    """Answer this request: ``inline`` before reading on (``initialize``), else in a task
    whose end is reported with ``finished()``."""

    request: Request
    ticket: Ticket | None = None
    inline: bool = False


@attrs.frozen
class DeliverAnswer:
    """The client answered one of our requests: wake whoever waits for it."""

    answer: Response | ErrorResponse


@attrs.frozen
class CancelRequest:
    """``$/cancel_request`` for a request still running: a prompt (``ticket``) is cancelled as
    its session's turn; any other request's handler is cancelled and answers ``-32800``."""

    request_id: RequestId
    ticket: Ticket | None


@attrs.frozen
class CancelSession:
    """``session/cancel``: cancel the session's turn, and tell the client to drop the requests
    we had pending for it (their waiters get ``cancelled_answer``)."""

    session_id: str
    abandoned: tuple[RequestId, ...]


Action = SendMessage | RunRequest | DeliverAnswer | CancelRequest | CancelSession


def cancelled_answer(request_id: RequestId) -> ErrorResponse:
    """What a waiter gets for a request of ours that was abandoned."""
    return ErrorResponse(request_id, RpcError(REQUEST_CANCELLED, "Request cancelled"))


# --- the state machine --------------------------------------------------------------------------


@attrs.define
class _Prompts:
    """One attached session's prompt order and cancel generation."""

    issued: int = 0
    serving: int = 0
    done: set[int] = attrs.field(factory=set)
    generation: int = 0
    #: Prompts cancelled one by one (``$/cancel_request``).
    cancelled: set[int] = attrs.field(factory=set)


class AcpConnection:
    """The agent side of one ACP connection, minus the I/O.

    ``methods`` are the requests the agent serves: before ``initialize`` they are refused with
    ``-32600``, and an unknown method is left to the handler lookup (``-32601``).
    """

    def __init__(self, methods: Collection[str], *, max_in_flight: int) -> None:
        self.initialized = False
        self.in_flight = 0
        self._methods = frozenset(methods)
        self._max_in_flight = max_in_flight
        #: Our own pending requests; the waiter is the method, for the log.
        self._outgoing: Outgoing[str] = Outgoing()
        self._sessions: dict[str, _Prompts] = {}
        #: Requests running in tasks, with the prompt ticket each holds.
        self._running: dict[RequestId, Ticket | None] = {}

    # --- input ---------------------------------------------------------------------------------

    def receive(self, message: Incoming) -> Action | None:
        """What to do about one message from the client; None when there is nothing to do."""
        match message:
            case Request(method="initialize"):
                # Inline, so a client that pipelines initialize and session/new gets the
                # capabilities it declared applied to that session.
                self.initialized = True
                return RunRequest(message, inline=True)
            case Request() if not self.initialized and message.method in self._methods:
                error = RpcError(
                    INVALID_REQUEST, f"{message.method} before initialize: send initialize first"
                )
                return SendMessage(ErrorResponse(message.id, error))
            case Notification() if not self.initialized:
                log.info("ignoring %s before initialize", message.method)
                return None
            case Request():
                if self.in_flight >= self._max_in_flight:
                    limit = self._max_in_flight
                    error = RpcError(INTERNAL_ERROR, f"too many requests in flight (limit {limit})")
                    return SendMessage(ErrorResponse(message.id, error))
                self.in_flight += 1
                ticket = self._arrival_ticket(message)
                self._running[message.id] = ticket
                return RunRequest(message, ticket)
            case Notification():
                return self._notified(message)
            case Response() | ErrorResponse():
                if self._outgoing.match(message) is None:
                    log.debug("ignoring an answer to no pending request: id %r", message.id)
                    return None
                return DeliverAnswer(message)
            case BadMessage(respond=True):
                log.info("bad message from the client: %s", message.error.message)
                return SendMessage(message.reply())
            case BadMessage():
                log.warning("ignoring a malformed response: %s", message.error.message)
        return None

    def finished(self, request_id: RequestId) -> None:
        """A ``RunRequest`` that was not inline has been answered."""
        self.in_flight -= 1
        self._running.pop(request_id, None)

    def _notified(self, message: Notification) -> Action | None:
        params = message.params if isinstance(message.params, dict) else {}
        if message.method == "session/cancel":
            session_id = params.get("sessionId")
            if not isinstance(session_id, str) or session_id not in self._sessions:
                log.debug("session/cancel for unknown session %r", session_id)
                return None
            self._sessions[session_id].generation += 1
            return CancelSession(session_id, tuple(self.abandon(session_id)))
        if message.method == "$/cancel_request":
            request_id = params.get("requestId")
            if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
                log.debug("ignoring $/cancel_request without a usable requestId")
                return None
            if request_id not in self._running:
                log.debug("$/cancel_request for %r: not running (already answered?)", request_id)
                return None
            ticket = self._running[request_id]
            if ticket is not None and (prompts := self._sessions.get(ticket.session_id)):
                prompts.cancelled.add(ticket.number)
            return CancelRequest(request_id, ticket)
        else:
            log.debug("ignoring notification %s", message.method)
        return None

    # --- our requests to the client ----------------------------------------------------------

    def start_request(self, method: str, params: object, tag: str | None = None) -> Request:
        """A new request of ours; ``tag`` (a session id) lets a cancel abandon it."""
        return self._outgoing.start(method, params, method, tag)

    def is_pending(self, request_id: RequestId) -> bool:
        return self._outgoing.is_pending(request_id)

    def forget(self, request_id: RequestId) -> None:
        self._outgoing.forget(request_id)

    def abandon(self, tag: str | None = None) -> list[RequestId]:
        """Drop our pending requests (those of one session, or all); their ids, to wake."""
        pending = self._outgoing.all() if tag is None else self._outgoing.tagged(tag)
        ids = [request_id for request_id, _ in pending]
        for request_id in ids:
            self._outgoing.forget(request_id)
        return ids

    # --- attached sessions and their prompts -----------------------------------------------------

    def attach(self, session_id: str) -> None:
        self._sessions.setdefault(session_id, _Prompts())

    def detach(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def is_attached(self, session_id: str) -> bool:
        return session_id in self._sessions

    def session_ids(self) -> list[str]:
        return list(self._sessions)

    def ticket(self, session_id: str) -> Ticket:
        """The next place in an attached session's prompt queue."""
        prompts = self._sessions[session_id]
        prompts.issued += 1
        return Ticket(session_id, prompts.issued - 1, prompts.generation)

    def may_run(self, ticket: Ticket) -> bool:
        """Whether every prompt before this one has been released."""
        prompts = self._sessions.get(ticket.session_id)
        return prompts is None or prompts.serving == ticket.number

    def release(self, ticket: Ticket) -> None:
        """This prompt is done (or given up): the next one may run."""
        prompts = self._sessions.get(ticket.session_id)
        if prompts is None:
            return
        prompts.done.add(ticket.number)
        while prompts.serving in prompts.done:
            prompts.done.remove(prompts.serving)
            prompts.serving += 1

    def cancelled(self, ticket: Ticket) -> bool:
        """Whether a ``session/cancel`` (or the connection's end) came after this prompt, or a
        ``$/cancel_request`` named it."""
        prompts = self._sessions.get(ticket.session_id)
        return (
            prompts is None
            or prompts.generation != ticket.generation
            or ticket.number in prompts.cancelled
        )

    def cancel_all(self) -> list[str]:
        """The connection is ending with its turns cancelled: every prompt answers
        ``cancelled``. Returns the attached sessions, whose turns to cancel."""
        for prompts in self._sessions.values():
            prompts.generation += 1
        return list(self._sessions)

    def _arrival_ticket(self, request: Request) -> Ticket | None:
        """A prompt's place, taken in arrival order when its session is attached already."""
        params = request.params
        if request.method != "session/prompt" or not isinstance(params, dict):
            return None
        session_id = params.get("sessionId")
        if isinstance(session_id, str) and session_id in self._sessions:
            return self.ticket(session_id)
        return None
