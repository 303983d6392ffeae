"""The agent side of ACP for one client connection, over any transport.

A transport decodes messages and hands each to ``AcpDispatcher.receive``; the dispatcher sends
through one ``send`` function, which the transport backs with its single writer. ``initialize``,
notifications and responses are handled inline, in arrival order; every other request runs in
its own task, so a long ``session/prompt`` never stops the connection from reading (the answer
to a permission request must get through while that prompt waits for it).

Ordering guarantees:

- **Updates before the reply.** Each attached session has one feed task that turns its events
  into ``session/update`` notifications. When ``Session.prompt`` returns, the engine has queued
  every event of that turn in our subscription; the prompt handler notes how many events the feed
  has taken plus how many are buffered, waits until the feed has sent that many, and only then
  sends ``{stopReason}``.
- **tool_call before its permission request.** The turn emits ``ToolCallStarted`` before it asks
  for permission, but through a buffered fan-out; the asker waits until the feed has sent that
  call's ``tool_call`` before sending ``session/request_permission``.

Decisions: a failed turn (provider error, missing key) answers the prompt with a JSON-RPC error
``-32603`` whose ``message`` and ``data`` carry the one-line error; but once ``session/cancel``
arrived during a prompt, the prompt answers ``cancelled`` whatever happened. Prompts on one
session run one at a time in arrival order, queued here rather than in the engine, so a
``session/cancel`` also cancels the prompts queued before it. More than
``max_requests_in_flight`` concurrent requests get ``-32603`` at once rather than a growing
backlog. Sessions attached to a connection get its permission asker and, when the client offers
``fs``, its file access; the last connection to attach a session answers for it.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from openheim import __version__
from openheim.acp import schema
from openheim.acp.codec import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    REQUEST_CANCELLED,
    RESOURCE_NOT_FOUND,
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
    invalid_params,
)
from openheim.agent.events import (
    AgentEvent,
    MessageChunk,
    StopReason,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from openheim.agent.loop import CANCELLED_RESULT
from openheim.concurrency import open_service_nursery
from openheim.config.model import ClientMcpPolicy
from openheim.config.resolve import resolve_model
from openheim.errors import (
    ConfigError,
    ConversationNotFoundError,
    HistoryError,
    OpenheimError,
    SkillError,
    WorkspaceError,
)
from openheim.models import ToolCall
from openheim.permissions import Answer
from openheim.session import Session, SessionOptions, SessionRegistry
from openheim.skills import installed_skills
from openheim.tools.base import FileAccessError

log = logging.getLogger(__name__)

#: Seconds to wait for the user's answer to a permission request (then: denied).
PERMISSION_TIMEOUT_ENV = "OPENHEIM_ACP_PERMISSION_TIMEOUT"

Send = Callable[[Message], Awaitable[None]]
_Reply = Response | ErrorResponse


@attrs.frozen
class AcpSettings:
    permission_timeout: float = 300.0
    #: Bound on waiting for the client's ``fs/*`` answers; a silent client fails the tool call.
    fs_timeout: float = 120.0
    max_requests_in_flight: int = 128
    #: On close, how long running prompts get to answer ``cancelled`` before being dropped.
    close_grace: float = 2.0
    #: Which ``mcpServers`` a client may pass (``serve`` with tokens: none by default).
    client_mcp_servers: ClientMcpPolicy = ClientMcpPolicy.ALL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AcpSettings:
        env = os.environ if env is None else env
        raw = env.get(PERMISSION_TIMEOUT_ENV, "").strip()
        if not raw:
            return cls()
        try:
            timeout = float(raw)
        except ValueError:
            raise ConfigError(
                f"{PERMISSION_TIMEOUT_ENV}={raw!r} is not a number of seconds"
            ) from None
        if timeout <= 0:
            raise ConfigError(f"{PERMISSION_TIMEOUT_ENV} must be greater than 0, got {raw}")
        return cls(permission_timeout=timeout)


@attrs.frozen
class ClientCapabilities:
    read_text_file: bool = False
    write_text_file: bool = False

    @classmethod
    def parse(cls, value: Any) -> ClientCapabilities:
        fs = value.get("fs") if isinstance(value, dict) else None
        if not isinstance(fs, dict):
            return cls()
        return cls(fs.get("readTextFile") is True, fs.get("writeTextFile") is True)


def _cancelled_reply(request_id: RequestId) -> ErrorResponse:
    return ErrorResponse(request_id, RpcError(REQUEST_CANCELLED, "Request cancelled"))


# --- one session's events to the client ---------------------------------------------------------


class _Feed:
    """Sends one session's events to this client as ``session/update``, in order, from one task.

    Counts what it took and what it sent so a prompt can wait for "everything of my turn".
    """

    def __init__(
        self,
        session: Session,
        events: trio.MemoryReceiveChannel[AgentEvent],
        send_update: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        self.session = session
        self._events = events
        self._send = send_update
        self._taken = 0
        self._sent = 0
        self._progress = trio.Event()
        self._started: dict[str, trio.Event] = {}
        self._open: dict[str, ToolCall] = {}
        self.closed = False

    async def run(self) -> None:
        try:
            async with self._events:
                held: AgentEvent | None = None
                while True:
                    if held is None:
                        try:
                            event = await self._events.receive()
                        except trio.EndOfChannel:
                            break
                        self._taken += 1
                    else:
                        event, held = held, None
                    count = 1
                    if isinstance(event, MessageChunk):
                        event, count, held = self._coalesce(event)
                    try:
                        await self._forward(event)
                    finally:
                        self._sent += count
                        self._wake()
        except trio.ClosedResourceError:
            pass  # detached by ``close()``
        finally:
            self.closed = True
            self._wake()
            for started in self._started.values():
                started.set()

    def close(self) -> None:
        """Unsubscribe: the session drops a subscriber whose channel is closed."""
        self._events.close()

    def _coalesce(self, first: MessageChunk) -> tuple[MessageChunk, int, AgentEvent | None]:
        """The text chunks already waiting, joined into one update.

        Only a backlog is merged (a client or socket slower than the model), so nothing waits
        for company: under load the client gets fewer, larger frames instead of falling ever
        further behind. Returns the chunk, how many events it stands for, and the first
        event after them (taken, to be sent next).
        """
        texts = [first.text]
        while True:
            try:
                event = self._events.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            self._taken += 1
            if not isinstance(event, MessageChunk):
                merged = MessageChunk("".join(texts)) if len(texts) > 1 else first
                return merged, len(texts), event
            texts.append(event.text)
        merged = MessageChunk("".join(texts)) if len(texts) > 1 else first
        return merged, len(texts), None

    def mark(self) -> int:
        """How many events have reached this feed so far; call with no checkpoint in between
        the moment of interest and this call."""
        return self._taken + self._events.statistics().current_buffer_used

    async def wait_sent(self, mark: int) -> None:
        while self._sent < mark and not self.closed:
            await self._progress.wait()

    async def wait_started(self, call_id: str) -> None:
        """Until this call's ``tool_call`` update has gone out."""
        if not self.closed:
            await self._started.setdefault(call_id, trio.Event()).wait()

    def _wake(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def _forward(self, event: AgentEvent) -> None:
        cwd = self.session.cwd
        match event:
            case ToolCallStarted(call=call):
                self._open[call.id] = call
                await self._send(schema.tool_call(call, cwd))
                # An asked call stays pending until the user allows it (the asker says so).
                if not self.session.permissions.would_ask(call):
                    await self._send(schema.tool_call_in_progress(call.id))
                self._started.setdefault(call.id, trio.Event()).set()
            case ToolCallFinished(call=call):
                self._open.pop(call.id, None)
                self._started.pop(call.id, None)
                for update in schema.updates_for(event, cwd):
                    await self._send(update)
            case TurnFinished():
                # Calls cut off by a cancel get no ToolCallFinished; close them for the client.
                for call_id in list(self._open):
                    await self._send(schema.tool_call_finished(call_id, CANCELLED_RESULT))
                self._open.clear()
                self._started.clear()
            case _:
                for update in schema.updates_for(event, cwd):
                    await self._send(update)


class _PromptQueue:
    """Prompts of one session, served one at a time in arrival order.

    Tickets are taken while reading, before the handler task starts, because trio starts
    tasks in no fixed order. A ticket given up early (invalid prompt, shutdown) is skipped.
    """

    def __init__(self) -> None:
        self._issued = 0
        self._serving = 0
        self._done: set[int] = set()
        self._changed = trio.Event()

    def ticket(self) -> int:
        self._issued += 1
        return self._issued - 1

    async def wait(self, ticket: int) -> None:
        while self._serving != ticket:
            await self._changed.wait()

    def release(self, ticket: int) -> None:
        self._done.add(ticket)
        while self._serving in self._done:
            self._done.remove(self._serving)
            self._serving += 1
        self._changed.set()
        self._changed = trio.Event()


@attrs.frozen
class _Ticket:
    number: int
    #: ``session/cancel`` count when the prompt arrived: a cancel after that cancels it.
    cancels: int


@attrs.define(eq=False)
class _Attached:
    """A session this connection uses: its feed, and this connection's prompt queue."""

    session: Session
    feed: _Feed
    asker: Callable[[ToolCall], Awaitable[Answer | None]]
    files: ClientFiles | None
    prompts: _PromptQueue = attrs.field(factory=_PromptQueue)
    #: Bumped by each ``session/cancel``; a prompt that sees it change answers ``cancelled``.
    cancels: int = 0

    def take_ticket(self) -> _Ticket:
        return _Ticket(self.prompts.ticket(), self.cancels)


def _release(attached: _Attached) -> None:
    """Stop feeding a session to this connection and stop answering for it."""
    attached.feed.close()
    if attached.session.asker is attached.asker:
        attached.session.asker = None
    if attached.files is not None and attached.session.files is attached.files:
        attached.session.files = None


@attrs.frozen
class ClientFiles:
    """``FileAccess`` through the client's ``fs/*`` methods (its editor buffers)."""

    dispatcher: AcpDispatcher
    session_id: str
    read: bool
    write: bool

    async def read_text(self, path: Path, line: int | None, limit: int | None) -> str:
        if not self.read:
            raise NotImplementedError
        params: dict[str, Any] = {"sessionId": self.session_id, "path": str(path)}
        if line is not None:
            params["line"] = line
        if limit is not None:
            params["limit"] = limit
        result = await self._call("fs/read_text_file", params)
        content = result.get("content") if isinstance(result, dict) else None
        if not isinstance(content, str):
            raise FileAccessError("the client's answer to fs/read_text_file has no text content")
        return content

    async def write_text(self, path: Path, content: str) -> None:
        if not self.write:
            raise NotImplementedError
        params = {"sessionId": self.session_id, "path": str(path), "content": content}
        await self._call("fs/write_text_file", params)

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        timeout = self.dispatcher.settings.fs_timeout
        try:
            with trio.fail_after(timeout):
                return await self.dispatcher.request(method, params, tag=self.session_id)
        except trio.TooSlowError:
            raise FileAccessError(
                f"the client did not answer {method} within {timeout:g} s"
            ) from None
        except RpcError as exc:
            raise FileAccessError(f"the client answered {method} with: {exc.message}") from None


# --- the dispatcher ----------------------------------------------------------------------------


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
        #: ACP: a client initializes the connection before anything else.
        self.initialized = False
        self._send = send
        self._nursery = nursery
        self._sessions: dict[str, _Attached] = {}
        self._outgoing: Outgoing[trio.MemorySendChannel[_Reply]] = Outgoing()
        self._in_flight = 0
        self._idle = trio.Event()
        self._idle.set()
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "initialize": self._initialize,
            "authenticate": self._authenticate,
            "session/new": self._new_session,
            "session/load": self._load_session,
            "session/list": self._list_sessions,
            "session/close": self._close_session,
            "session/prompt": self._prompt,
            "session/set_config_option": self._set_config_option,
            "session/set_model": self._set_model_legacy,
        }

    # --- input -------------------------------------------------------------------------------

    async def receive(self, message: Incoming) -> None:
        """Handle one message from the client; returns once it is handled or handed to a task."""
        match message:
            case Request(method="initialize"):
                # Inline, so a client that pipelines initialize and session/new gets the
                # capabilities it declared applied to that session.
                await self._answer(message)
            case Request() if not self.initialized and message.method in self._handlers:
                error = RpcError(
                    INVALID_REQUEST,
                    f"{message.method} before initialize: send initialize first",
                )
                await self._send(ErrorResponse(message.id, error))
            case Notification() if not self.initialized:
                log.info("ignoring %s before initialize", message.method)
            case Request():
                if self._in_flight >= self.settings.max_requests_in_flight:
                    limit = self.settings.max_requests_in_flight
                    error = RpcError(INTERNAL_ERROR, f"too many requests in flight (limit {limit})")
                    await self._send(ErrorResponse(message.id, error))
                    return
                self._in_flight += 1
                self._idle = trio.Event()
                self._nursery.start_soon(self._answer_in_task, message, self._ticket(message))
            case Notification():
                await self._notified(message)
            case Response() | ErrorResponse():
                waiter = self._outgoing.match(message)
                if waiter is None:
                    log.debug("ignoring an answer to no pending request: id %r", message.id)
                else:
                    waiter.send_nowait(message)
            case BadMessage(respond=True):
                log.info("bad message from the client: %s", message.error.message)
                await self._send(message.reply())
            case BadMessage():
                log.warning("ignoring a malformed response: %s", message.error.message)

    def _ticket(self, request: Request) -> _Ticket | None:
        """A prompt's place in its session's queue, taken in arrival order."""
        params = request.params
        if request.method != "session/prompt" or not isinstance(params, dict):
            return None
        session_id = params.get("sessionId")
        attached = self._sessions.get(session_id) if isinstance(session_id, str) else None
        return attached.take_ticket() if attached is not None else None

    async def _answer_in_task(self, request: Request, ticket: _Ticket | None) -> None:
        try:
            await self._answer(request, ticket)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _answer(self, request: Request, ticket: _Ticket | None = None) -> None:
        try:
            handler = self._handlers.get(request.method)
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"Method not found: {request.method}")
            if request.params is not None and not isinstance(request.params, dict):
                raise invalid_params("params must be an object")
            params = request.params or {}
            if request.method == "session/prompt":
                result = await self._prompt(params, ticket)
            else:
                result = await handler(params)
            reply: _Reply = Response(request.id, result)
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

    async def _notified(self, message: Notification) -> None:
        params = message.params if isinstance(message.params, dict) else {}
        if message.method == "session/cancel":
            await self._cancel(params)
        elif message.method == "$/cancel_request":
            # Our handlers finish promptly or are cancelled through session/cancel; answering
            # normally is allowed by the protocol.
            log.debug("ignoring $/cancel_request for %r", params.get("requestId"))
        else:
            log.debug("ignoring notification %s", message.method)

    # --- requests to the client ----------------------------------------------------------------

    async def request(self, method: str, params: Any, *, tag: str | None = None) -> Any:
        """Ask the client; raises ``RpcError`` when it answers with an error."""
        send, receive = trio.open_memory_channel[_Reply](1)
        message = self._outgoing.start(method, params, send, tag)
        try:
            await self._send(message)
            reply = await receive.receive()
        except trio.Cancelled:
            if self._outgoing.is_pending(message.id):
                self._outgoing.forget(message.id)
                await self._send_shielded(
                    Notification("$/cancel_request", {"requestId": message.id})
                )
            raise
        finally:
            self._outgoing.forget(message.id)
        if isinstance(reply, ErrorResponse):
            raise reply.error
        return reply.result

    async def _send_shielded(self, message: Message) -> None:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await self._send(message)

    def _abandon_requests(self, tag: str | None = None) -> list[RequestId]:
        pending = list(self._outgoing.all() if tag is None else self._outgoing.tagged(tag))
        for request_id, waiter in pending:
            self._outgoing.forget(request_id)
            waiter.send_nowait(_cancelled_reply(request_id))
        return [request_id for request_id, _ in pending]

    # --- sessions ------------------------------------------------------------------------------

    def _attach(self, session: Session) -> _Attached:
        attached = self._sessions.get(session.id)
        if attached is None:
            session_id = session.id

            async def send_update(update: dict[str, Any]) -> None:
                await self._update(session_id, update)

            async def ask(call: ToolCall) -> Answer | None:
                return await self._ask(session_id, call)

            caps = self.client
            files = None
            if caps.read_text_file or caps.write_text_file:
                files = ClientFiles(self, session_id, caps.read_text_file, caps.write_text_file)
            feed = _Feed(session, session.subscribe(), send_update)
            attached = _Attached(session, feed, ask, files)
            self._sessions[session_id] = attached
            self._nursery.start_soon(feed.run)
        # The latest connection to attach answers for the session.
        attached.session.asker = attached.asker
        if attached.files is not None:
            attached.session.files = attached.files
        return attached

    def session_ids(self) -> list[str]:
        """The sessions this connection has attached (created, loaded or prompted)."""
        return list(self._sessions)

    def detach(self) -> None:
        """Unsubscribe from every session and stop answering for them."""
        for attached in self._sessions.values():
            _release(attached)
        self._sessions.clear()

    def _attached(self, params: dict[str, Any]) -> _Attached:
        session_id = params.get("sessionId")
        if not isinstance(session_id, str):
            raise invalid_params("sessionId must be a string")
        attached = self._sessions.get(session_id)
        if attached is not None:
            return attached
        live = self.registry.get(session_id)
        if live is None:
            raise RpcError(
                RESOURCE_NOT_FOUND,
                f"session {session_id} not found; create one with session/new "
                "or load it with session/load",
            )
        return self._attach(live)

    async def _update(self, session_id: str, update: dict[str, Any]) -> None:
        await self._send(Notification("session/update", schema.session_update(session_id, update)))

    def _session_result(self, session: Session) -> dict[str, Any]:
        config = self.registry.runtime.config
        return {
            "configOptions": schema.config_options(config, session.choice),
            "models": schema.legacy_models(config, session.choice),
        }

    # --- handlers ------------------------------------------------------------------------------

    async def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        # Version 1 is the only one: it answers every request (ACP: "else, the latest").
        self.client = ClientCapabilities.parse(params.get("clientCapabilities"))
        self.initialized = True
        runtime = self.registry.runtime
        return schema.initialize_result(
            version=__version__,
            config=runtime.config,
            skills=installed_skills(runtime.paths.skills_dir),
            tools=runtime.tools().definitions(),
            mcp_servers=runtime.mcp.describe() if runtime.mcp else (),
        )

    async def _authenticate(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _new_session(self, params: dict[str, Any]) -> dict[str, Any]:
        options = _session_options(params, self.settings.client_mcp_servers)
        try:
            session = await self.registry.create(options)
        except (ConfigError, SkillError, WorkspaceError) as exc:
            raise _refused(exc) from None
        self._attach(session)
        return {"sessionId": session.id, **self._session_result(session)}

    async def _load_session(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = params.get("sessionId")
        if not isinstance(session_id, str):
            raise invalid_params("sessionId must be a string")
        try:
            uuid.UUID(session_id)
        except ValueError:
            raise invalid_params(f"invalid session id {session_id!r}: expected a UUID") from None
        options = _session_options(params, self.settings.client_mcp_servers)
        try:
            session = await self.registry.load(session_id, options)
        except ConversationNotFoundError as exc:
            raise RpcError(RESOURCE_NOT_FOUND, exc.public) from None
        except (ConfigError, SkillError, WorkspaceError) as exc:
            raise _refused(exc) from None
        except HistoryError as exc:
            log.warning("session/load %s: %s", session_id, exc)
            raise RpcError(INTERNAL_ERROR, exc.public, exc.public) from None
        self._attach(session)
        for update in schema.replay(session.conversation, session.cwd):
            await self._update(session.id, update)
        return self._session_result(session)

    async def _list_sessions(self, params: dict[str, Any]) -> dict[str, Any]:
        cwd = params.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise invalid_params("cwd must be a string")
        metas = await self.registry.list()
        return {
            "sessions": [
                schema.session_info(meta) for meta in metas if cwd is None or meta.cwd == cwd
            ]
        }

    async def _close_session(self, params: dict[str, Any]) -> dict[str, Any]:
        """Cancel its turn, free it, and stop the MCP servers it was given."""
        attached = self._attached(params)
        session_id = attached.session.id
        _release(self._sessions.pop(session_id, attached))
        self.registry.close(session_id)
        return {}

    async def _prompt(
        self, params: dict[str, Any], ticket: _Ticket | None = None
    ) -> dict[str, Any]:
        attached = self._attached(params)
        if ticket is None:  # the session was not attached when the prompt arrived
            ticket = attached.take_ticket()
        try:
            text = schema.prompt_text(params.get("prompt"))
            await attached.prompts.wait(ticket.number)
            if attached.cancels != ticket.cancels:  # cancelled while queued
                return {"stopReason": StopReason.CANCELLED.value}
            failure: OpenheimError | None = None
            stop_reason = StopReason.CANCELLED
            try:
                stop_reason = (await attached.session.prompt(text)).stop_reason
            except OpenheimError as exc:
                failure = exc
            mark = attached.feed.mark()  # no checkpoint since prompt() returned
            await attached.feed.wait_sent(mark)
        finally:
            attached.prompts.release(ticket.number)
        if attached.cancels != ticket.cancels:
            return {"stopReason": StopReason.CANCELLED.value}
        if failure is not None:
            raise RpcError(INTERNAL_ERROR, str(failure), str(failure))
        return {"stopReason": stop_reason.value}

    async def _cancel(self, params: dict[str, Any]) -> None:
        session_id = params.get("sessionId")
        attached = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if attached is None:
            log.debug("session/cancel for unknown session %r", session_id)
            return
        attached.cancels += 1
        for request_id in self._abandon_requests(tag=attached.session.id):
            await self._send(Notification("$/cancel_request", {"requestId": request_id}))
        attached.session.cancel()

    async def _set_config_option(self, params: dict[str, Any]) -> dict[str, Any]:
        attached = self._attached(params)
        config_id = params.get("configId")
        if config_id != "model":
            raise invalid_params(f"unknown config option {config_id!r}; this agent has: model")
        self._set_model(attached.session, params.get("value"))
        config = self.registry.runtime.config
        return {"configOptions": schema.config_options(config, attached.session.choice)}

    async def _set_model_legacy(self, params: dict[str, Any]) -> dict[str, Any]:
        attached = self._attached(params)
        self._set_model(attached.session, params.get("modelId"))
        return {}

    def _set_model(self, session: Session, value: Any) -> None:
        config = self.registry.runtime.config
        labels = schema.model_labels(config, session.choice)
        if isinstance(value, str):
            try:
                label = resolve_model(config, value).label
            except ConfigError:
                label = None
            if label in labels:
                session.set_model(value)
                return
        raise invalid_params(f"unknown model {value!r}; choose one of: {', '.join(labels)}")

    # --- permissions ---------------------------------------------------------------------------

    async def _ask(self, session_id: str, call: ToolCall) -> Answer | None:
        attached = self._sessions.get(session_id)
        if attached is None:
            return None
        timeout = self.settings.permission_timeout
        params = schema.permission_request(session_id, call, attached.session.cwd)
        result: Any = None
        with trio.move_on_after(timeout) as waiting:
            await attached.feed.wait_started(call.id)
            try:
                result = await self.request("session/request_permission", params, tag=session_id)
            except RpcError as exc:
                log.info("permission request for %s failed: %s", call.name, exc.message)
                return None
        if waiting.cancelled_caught:
            log.warning("no answer to the permission request for %s in %g s", call.name, timeout)
            return None
        answer = schema.permission_answer(result)
        if answer is not None and answer.allows:
            await self._update(session_id, schema.tool_call_in_progress(call.id))
        return answer

    # --- closing -------------------------------------------------------------------------------

    async def finish(self, *, cancel_turns: bool, grace: float | None = None) -> None:
        """The client is gone or done: cancel what it started, let prompts answer briefly.

        ``grace`` (default ``settings.close_grace``) bounds the wait for prompts to answer;
        0 when nobody is left to read the answers.
        """
        if cancel_turns:
            for attached in self._sessions.values():
                attached.cancels += 1
                attached.session.cancel()
        self._abandon_requests()
        with trio.move_on_after(self.settings.close_grace if grace is None else grace):
            await self._idle.wait()


def _refused(exc: OpenheimError) -> RpcError:
    """Bad session params: the client sees what it sent, the log the whole story."""
    log.info("refused session params: %s", exc)
    return invalid_params(exc.public)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _session_options(
    params: dict[str, Any], allowed: ClientMcpPolicy = ClientMcpPolicy.ALL
) -> SessionOptions:
    """``session/new`` and ``session/load`` params: cwd, mcpServers, ``_meta.model/skills``."""
    cwd = params.get("cwd")
    if not isinstance(cwd, str) or not Path(cwd).is_absolute():
        raise invalid_params(f"cwd must be an absolute path, got {cwd!r}")
    if "\0" in cwd or not _encodable(cwd):
        raise invalid_params("cwd is not a valid path: it has a NUL byte or a lone surrogate")
    servers = schema.mcp_servers(params.get("mcpServers"))
    for server in servers:
        if allowed is ClientMcpPolicy.NONE or (
            allowed is ClientMcpPolicy.HTTP and server.transport != "http"
        ):
            raise invalid_params(
                f"mcpServers: this server does not start {server.transport} MCP servers for "
                f"clients ({server.name!r}); its operator sets [server] client_mcp_servers"
            )
    meta = params.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    model = meta.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid_params("_meta.model must be a string")
    skills = meta.get("skills")
    if skills is not None and (
        not isinstance(skills, list) or not all(isinstance(s, str) for s in skills)
    ):
        raise invalid_params("_meta.skills must be an array of strings")
    return SessionOptions(
        cwd=Path(cwd),
        model=model or None,
        skills=tuple(skills) if skills is not None else None,
        mcp_servers=servers,
    )


@asynccontextmanager
async def open_dispatcher(
    registry: SessionRegistry,
    send: Send,
    settings: AcpSettings | None = None,
    *,
    cancel_turns_on_close: bool = True,
) -> AsyncIterator[AcpDispatcher]:
    """A dispatcher whose tasks live as long as the ``async with`` body (the connection).

    When the body ends normally (end of input), running turns are cancelled if
    ``cancel_turns_on_close`` and prompts get ``close_grace`` seconds to answer.
    """
    async with open_service_nursery() as nursery:
        dispatcher = AcpDispatcher(registry, send, nursery, settings or AcpSettings())
        try:
            yield dispatcher
            await dispatcher.finish(cancel_turns=cancel_turns_on_close)
        finally:
            dispatcher.detach()
