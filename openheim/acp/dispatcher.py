"""The agent side of ACP for one client connection, over any transport: the trio half.

A transport decodes messages and hands each to ``AcpDispatcher.receive``; the dispatcher sends
through one ``send`` function, which the transport backs with its single writer. What to do
with a message is decided by the sans-IO ``AcpConnection``; this module carries it out:
``initialize`` inline, every other request in its own task (so a long ``session/prompt`` never
stops the connection from reading: the answer to a permission request must get through while
that prompt waits for it), answers to our requests to their waiters.

Ordering guarantees:

- **Updates before the reply.** Each attached session has a feed (``SessionFeed``) that
  follows it: the turn's task queues each update as it makes the event, so all of a turn's
  updates are queued before the prompt's reply.
- **tool_call before its permission request.** The turn sends ``ToolCallStarted`` before it
  asks, so the call's ``tool_call`` is queued before ``session/request_permission``.

A failed turn answers the prompt with ``-32603`` carrying the one-line error; once
``session/cancel`` arrived during a prompt, the prompt answers ``cancelled`` whatever happened.
The last connection to attach a session answers its permission questions and, when the client
offers ``fs``, serves its files.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from openheim.acp import blocks, schema, tool_updates
from openheim.acp.client_files import ClientCapabilities
from openheim.acp.codec import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    REQUEST_CANCELLED,
    ErrorResponse,
    Incoming,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    RpcError,
    invalid_params,
)
from openheim.acp.connection import (
    AcpConnection,
    CancelRequest,
    CancelSession,
    DeliverAnswer,
    RunRequest,
    SendMessage,
    Ticket,
    cancelled_answer,
)
from openheim.acp.feed import SessionFeed
from openheim.acp.methods import AgentMethods, Call, Handler
from openheim.acp.settings import AcpSettings
from openheim.foundation.concurrency import open_service_nursery
from openheim.foundation.errors import OpenheimError
from openheim.foundation.models import ToolCall
from openheim.permissions import Answer
from openheim.session import Attachment, Session, SessionRegistry

log = logging.getLogger(__name__)

Send = Callable[[Message], Awaitable[None]]
_Reply = Response | ErrorResponse


@attrs.frozen
class _Held:
    """A session this connection holds: its feed and its attachment."""

    feed: SessionFeed
    attachment: Attachment


class AcpDispatcher:
    def __init__(
        self,
        registry: SessionRegistry,
        send: Send,
        nursery: trio.Nursery,
        settings: AcpSettings,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.client = ClientCapabilities()
        self._handlers = AgentMethods(self).table()
        self.core = AcpConnection(self._handlers, max_in_flight=settings.max_requests_in_flight)
        self._send = send
        self._nursery = nursery
        self._held: dict[str, _Held] = {}
        self._waiters: dict[RequestId, trio.MemorySendChannel[_Reply]] = {}
        #: Handlers ``$/cancel_request`` can cancel, by request id.
        self._handler_scopes: dict[RequestId, trio.CancelScope] = {}
        self._idle = trio.Event()
        self._idle.set()
        self._turns = trio.Event()
        self.settled = False

    # --- input -------------------------------------------------------------------------------

    async def receive(self, message: Incoming) -> None:
        """Handle one message from the client; returns once it is handled or handed to a task."""
        match self.core.receive(message):
            case SendMessage(message=reply):
                await self._send(reply)
            case RunRequest(request=request, inline=True):
                await self._answer(request, None)
            case RunRequest(request=request, ticket=ticket):
                self._idle = trio.Event()
                # Made now, not when the task starts: a $/cancel_request may come first.
                if request.method != "session/prompt":  # a prompt is cancelled as a turn
                    self._handler_scopes[request.id] = trio.CancelScope()
                self._nursery.start_soon(self._answer_in_task, request, ticket)
            case DeliverAnswer(answer=answer):
                waiter = self._waiters.pop(answer.id, None)
                if waiter is not None:
                    waiter.send_nowait(answer)
            case CancelRequest(request_id=request_id, ticket=ticket):
                self._cancel_request(request_id, ticket)
            case CancelSession(session_id=session_id, abandoned=abandoned):
                self._wake_abandoned(abandoned)
                for request_id in abandoned:
                    await self._send(Notification("$/cancel_request", {"requestId": request_id}))
                if (held := self._held.get(session_id)) is not None:
                    held.feed.session.cancel()

    async def _answer_in_task(self, request: Request, ticket: Ticket | None) -> None:
        try:
            await self._answer(request, ticket)
        finally:
            self._handler_scopes.pop(request.id, None)
            self.core.finished(request.id)
            if self.core.in_flight == 0:
                self._idle.set()

    def _cancel_request(self, request_id: RequestId, ticket: Ticket | None) -> None:
        """A prompt is cancelled as a turn (it answers ``cancelled``), any other request by
        cancelling its handler (it answers ``-32800``)."""
        if ticket is not None:
            held = self._held.get(ticket.session_id)
            if held is not None and self.core.may_run(ticket):  # running now, not queued
                held.feed.session.cancel()
        elif (scope := self._handler_scopes.get(request_id)) is not None:
            scope.cancel()

    async def _answer(self, request: Request, ticket: Ticket | None) -> None:
        call = Call({}, ticket)
        try:
            handler = self._handlers.get(request.method)
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"Method not found: {request.method}")
            if request.params is not None and not isinstance(request.params, dict):
                raise invalid_params("params must be an object")
            call = Call(request.params or {}, ticket)
            reply: _Reply = Response(request.id, await self._handle(request, handler, call))
        except RpcError as error:
            reply = ErrorResponse(request.id, error)
        except OpenheimError as exc:
            log.info("ACP %s failed: %s", request.method, exc)
            reply = ErrorResponse(request.id, RpcError(INTERNAL_ERROR, exc.public, exc.public))
        except Exception:  # a bug fails this request, never the connection
            log.exception("ACP %s failed", request.method)
            message = "Internal error (the server log has the details)"
            reply = ErrorResponse(request.id, RpcError(INTERNAL_ERROR, message))
        await self._send(reply)
        if isinstance(reply, Response):
            for session_id, update in call.then:
                await self.update(session_id, update)

    async def _handle(self, request: Request, handler: Handler, call: Call) -> Any:
        """Run the handler where ``$/cancel_request`` can reach it; a prompt has no scope here,
        it is left to its turn's own cancel (a cancelled handler would leave the turn running)."""
        scope = self._handler_scopes.get(request.id)
        if scope is None:
            return await handler(call)
        with scope:
            return await handler(call)
        raise RpcError(REQUEST_CANCELLED, "Request cancelled")

    # --- requests to the client ----------------------------------------------------------------

    async def request(self, method: str, params: Any, tag: str | None = None) -> Any:
        """Ask the client; raises ``RpcError`` when it answers with an error."""
        send, receive = trio.open_memory_channel[_Reply](1)
        message = self.core.start_request(method, params, tag)
        self._waiters[message.id] = send
        try:
            await self._send(message)
            reply = await receive.receive()
        except trio.Cancelled:
            if self.core.is_pending(message.id):
                self.core.forget(message.id)
                await self._send_shielded(
                    Notification("$/cancel_request", {"requestId": message.id})
                )
            raise
        finally:
            self.core.forget(message.id)
            self._waiters.pop(message.id, None)
        if isinstance(reply, ErrorResponse):
            raise reply.error
        return reply.result

    async def _send_shielded(self, message: Message) -> None:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await self._send(message)

    def _wake_abandoned(self, request_ids: Iterable[RequestId]) -> None:
        for request_id in request_ids:
            waiter = self._waiters.pop(request_id, None)
            if waiter is not None:
                waiter.send_nowait(cancelled_answer(request_id))

    # --- sessions (the methods' ``Host``) ---------------------------------------------------

    async def attach(self, session: Session) -> SessionFeed:
        """Hold ``session`` for this connection (again: it answers for the session from now)."""
        held = self._held.get(session.id)
        if held is not None:
            held.attachment.claim()
            return held.feed
        session_id = session.id

        async def send_update(update: dict[str, Any]) -> None:
            await self.update(session_id, update)

        async def ask(call: ToolCall) -> Answer | None:
            return await self._ask(session_id, call)

        files = self.client.files_for(self.request, session_id, self.settings.fs_timeout)
        held = _Held(SessionFeed(session, send_update), session.hold(ask, files))
        self._held[session_id] = held
        self.core.attach(session_id)
        return held.feed

    def feed(self, session_id: str) -> SessionFeed | None:
        held = self._held.get(session_id)
        return held.feed if held is not None else None

    def release(self, session_id: str) -> None:
        """Stop feeding a session to this connection and stop answering for it."""
        held = self._held.pop(session_id, None)
        self.core.detach(session_id)
        if held is not None:
            held.feed.close()
            held.attachment.release()

    def session_ids(self) -> list[str]:
        """The sessions this connection has attached (created, loaded or prompted)."""
        return list(self._held)

    def detach(self) -> list[str]:
        """Let go of every session; returns their ids."""
        session_ids = self.session_ids()
        for session_id in session_ids:
            self.release(session_id)
        return session_ids

    async def update(self, session_id: str, update: dict[str, Any]) -> None:
        await self._send(Notification("session/update", blocks.session_update(session_id, update)))

    async def wait_turn(self, ticket: Ticket) -> None:
        while not self.core.may_run(ticket):
            await self._turns.wait()

    def end_turn(self, ticket: Ticket) -> None:
        self.core.release(ticket)
        self._turns.set()
        self._turns = trio.Event()

    # --- permissions ---------------------------------------------------------------------------

    async def _ask(self, session_id: str, call: ToolCall) -> Answer | None:
        held = self._held.get(session_id)
        if held is None:
            return None
        timeout = self.settings.permission_timeout
        params = schema.permission_request(session_id, call, held.feed.session.cwd)
        result: Any = None
        with trio.move_on_after(timeout) as waiting:
            try:
                result = await self.request("session/request_permission", params, session_id)
            except RpcError as exc:
                log.info("permission request for %s failed: %s", call.name, exc.message)
                return None
        if waiting.cancelled_caught:
            log.warning("no answer to the permission request for %s in %g s", call.name, timeout)
            return None
        answer = schema.permission_answer(result)
        if answer is not None and answer.allows:
            await self.update(session_id, tool_updates.tool_call_in_progress(call.id))
        return answer

    # --- closing -------------------------------------------------------------------------------

    async def finish(self, *, cancel_turns: bool, grace: float | None = None) -> None:
        """The client is gone or done: cancel what it started, let prompts answer briefly.

        ``grace`` (default ``settings.close_grace``) bounds the wait for prompts to answer;
        0 when nobody is left to read the answers.
        """
        self.settled = True
        if cancel_turns:
            for session_id in self.core.cancel_all():
                if (held := self._held.get(session_id)) is not None:
                    held.feed.session.cancel()
        self._wake_abandoned(self.core.abandon())
        with trio.move_on_after(self.settings.close_grace if grace is None else grace):
            await self._idle.wait()


@asynccontextmanager
async def open_dispatcher(
    registry: SessionRegistry,
    send: Send,
    settings: AcpSettings | None = None,
    *,
    cancel_turns_on_close: bool = True,
    on_detach: Callable[[list[str]], None] | None = None,
) -> AsyncIterator[AcpDispatcher]:
    """A dispatcher whose tasks live as long as the ``async with`` body (the connection): the
    one lifecycle of stdio, ``/acp`` and ``/ws``.

    Unless the body called ``finish`` itself, a body that ends normally (end of input) cancels
    running turns if ``cancel_turns_on_close`` and gives prompts ``close_grace`` seconds to
    answer. However it ends, every session is let go, and ``on_detach`` gets their ids.
    """
    async with open_service_nursery() as nursery:
        dispatcher = AcpDispatcher(registry, send, nursery, settings or AcpSettings())
        try:
            yield dispatcher
            if not dispatcher.settled:
                await dispatcher.finish(cancel_turns=cancel_turns_on_close)
        finally:
            session_ids = dispatcher.detach()
            if on_detach is not None:
                on_detach(session_ids)
