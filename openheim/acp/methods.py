"""The agent's ACP methods: what each client request does to the sessions.

Every handler takes a ``Call`` and returns the result object, or raises ``RpcError`` (an
``OpenheimError`` becomes ``-32603`` with its public text). They reach the connection only
through ``Host`` (the dispatcher), so routing, ordering and I/O stay out of this module.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs

from openheim import __version__
from openheim.acp import commands, schema, session_state, slash
from openheim.acp.client_files import ClientCapabilities
from openheim.acp.codec import INTERNAL_ERROR, RESOURCE_NOT_FOUND, RpcError, invalid_params
from openheim.acp.connection import AcpConnection, Ticket
from openheim.acp.feed import SessionFeed
from openheim.acp.session_params import refused, session_options, set_model
from openheim.acp.settings import AcpSettings
from openheim.agent.events import StopReason, TurnFinished
from openheim.config.context_windows import context_window
from openheim.foundation.errors import (
    ConfigError,
    ConversationNotFoundError,
    HistoryError,
    OpenheimError,
    ServerBusyError,
    SkillError,
    WorkspaceError,
)
from openheim.session import Session, SessionRegistry
from openheim.skills import installed_skills
from openheim.store.lease import SessionActiveElsewhereError

log = logging.getLogger(__name__)


@attrs.frozen
class Call:
    """One request to answer: its params, and (a prompt) its place in the session's queue."""

    params: dict[str, Any]
    ticket: Ticket | None = None
    #: ``(session id, update)`` pairs to send once the response is out: updates about a
    #: session the client learns of only from the response.
    then: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)


Handler = Callable[[Call], Awaitable[Any]]


class Host(Protocol):
    """What the methods need of the connection they serve."""

    registry: SessionRegistry
    settings: AcpSettings
    core: AcpConnection
    client: ClientCapabilities

    async def attach(self, session: Session) -> SessionFeed: ...

    def feed(self, session_id: str) -> SessionFeed | None: ...

    def release(self, session_id: str) -> None: ...

    async def update(self, session_id: str, update: dict[str, Any]) -> None: ...

    async def wait_turn(self, ticket: Ticket) -> None: ...

    def end_turn(self, ticket: Ticket) -> None: ...


class AgentMethods:
    def __init__(self, host: Host) -> None:
        self.host = host

    def table(self) -> dict[str, Handler]:
        """Every request method the agent serves."""
        return {
            "initialize": self.initialize,
            "authenticate": self.authenticate,
            "session/new": self.new_session,
            "session/load": self.load_session,
            "session/resume": self.resume_session,
            "session/list": self.list_sessions,
            "session/close": self.close_session,
            "session/delete": self.delete_session,
            "session/prompt": self.prompt,
            "session/set_config_option": self.set_config_option,
            "session/set_mode": self.set_mode_legacy,
            "session/set_model": self.set_model_legacy,
        }

    async def initialize(self, call: Call) -> dict[str, Any]:
        # Version 1 is the only one: it answers every request (ACP: "else, the latest").
        self.host.client = ClientCapabilities.parse(call.params.get("clientCapabilities"))
        runtime = self.host.registry.runtime
        return schema.initialize_result(
            version=__version__,
            config=runtime.config,
            skills=installed_skills(runtime.paths.skills_dir),
            tools=runtime.tools().definitions(),
            mcp_servers=runtime.mcp.describe() if runtime.mcp else (),
        )

    async def authenticate(self, call: Call) -> dict[str, Any]:
        return {}

    async def new_session(self, call: Call) -> dict[str, Any]:
        options = session_options(call.params, self.host.settings.client_mcp_servers)
        try:
            # Stored at once: an editor may reopen it after a restart before ever prompting it.
            session = await self.host.registry.create(options, save=True)
        except (ConfigError, SkillError, WorkspaceError) as exc:
            raise refused(exc) from None
        except ServerBusyError as exc:
            raise retryable(exc) from None
        await self.host.attach(session)
        call.then.append((session.id, self._commands_update()))
        return {"sessionId": session.id, **self._session_result(session)}

    async def load_session(self, call: Call) -> dict[str, Any]:
        """Reattach a stored or live session and replay its conversation before answering."""
        session = await self._reopen(call)
        for update in schema.replay(session.conversation, session.cwd):
            await self.host.update(session.id, update)
        call.then.append((session.id, self._commands_update()))
        return self._session_result(session)

    async def resume_session(self, call: Call) -> dict[str, Any]:
        """Reattach without replay: the client already shows the conversation."""
        session = await self._reopen(call)
        call.then.append((session.id, self._commands_update()))
        return self._session_result(session)

    async def _reopen(self, call: Call) -> Session:
        session_id = _session_id(call.params)
        options = session_options(call.params, self.host.settings.client_mcp_servers)
        try:
            session = await self.host.registry.load(session_id, options)
        except ConversationNotFoundError as exc:
            raise RpcError(RESOURCE_NOT_FOUND, exc.public) from None
        except (ConfigError, SkillError, WorkspaceError) as exc:
            raise refused(exc) from None
        except (SessionActiveElsewhereError, ServerBusyError) as exc:
            raise retryable(exc) from None
        except HistoryError as exc:
            log.warning("reopening %s: %s", session_id, exc)
            raise RpcError(INTERNAL_ERROR, exc.public, exc.public) from None
        held = self.host.feed(session.id)
        if held is not None and held.session is not session:  # an evicted or dropped copy
            self.host.release(session.id)
        await self.host.attach(session)
        return session

    async def list_sessions(self, call: Call) -> dict[str, Any]:
        cwd = call.params.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise invalid_params("cwd must be a string")
        metas = await self.host.registry.list()
        return {
            "sessions": [
                schema.session_info(meta) for meta in metas if cwd is None or meta.cwd == cwd
            ]
        }

    async def close_session(self, call: Call) -> dict[str, Any]:
        """Cancel its turn, free it, and stop the MCP servers it was given."""
        feed = await self._feed(call.params)
        session_id = feed.session.id
        self.host.release(session_id)
        self.host.registry.close(session_id)
        return {}

    async def delete_session(self, call: Call) -> dict[str, Any]:
        """Cancel and free it if live, and forget its conversation."""
        session_id = _session_id(call.params)
        self.host.release(session_id)
        try:
            await self.host.registry.delete(session_id)
        except ConversationNotFoundError as exc:
            raise RpcError(RESOURCE_NOT_FOUND, exc.public) from None
        except SessionActiveElsewhereError as exc:
            raise retryable(exc) from None
        return {}

    async def prompt(self, call: Call) -> dict[str, Any]:
        feed = await self._feed(call.params)
        core = self.host.core
        # The session was not attached when the prompt arrived: its place is taken now.
        ticket = call.ticket or core.ticket(feed.session.id)
        try:
            text = schema.prompt_text(call.params.get("prompt"))
            await self.host.wait_turn(ticket)
            if core.cancelled(ticket):  # cancelled while queued
                return {"stopReason": StopReason.CANCELLED.value}
            failure: OpenheimError | None = None
            finished: TurnFinished | None = None
            title = feed.session.conversation.title
            try:
                command = (
                    commands.parse_command(text.text, self._installed())
                    if text.text.lstrip().startswith("/")
                    else None
                )
                follow_up = (
                    text if command is None else await self._slash().run(feed.session, command)
                )
                if follow_up is not None:
                    finished = await feed.session.prompt(follow_up)
            except OpenheimError as exc:
                failure = exc
            await self._after_turn(feed.session, finished, title)
        finally:
            self.host.end_turn(ticket)
        if core.cancelled(ticket):
            return {"stopReason": StopReason.CANCELLED.value}
        if isinstance(failure, ServerBusyError):
            raise retryable(failure)
        if failure is not None:
            raise RpcError(INTERNAL_ERROR, str(failure), str(failure))
        if finished is None:  # a command was the whole turn
            return {"stopReason": StopReason.END_TURN.value}
        return {"stopReason": finished.stop_reason.value}

    async def _after_turn(
        self, session: Session, finished: TurnFinished | None, title: str | None
    ) -> None:
        """A new title, and how full the context is, before the prompt's reply."""
        conversation = session.conversation
        if conversation.title != title:
            info = session_state.session_info_update(conversation.title, conversation.updated_at)
            await self.host.update(session.id, info)
        if finished is not None and finished.context_tokens:
            size = context_window(session.choice.provider, session.choice.model)
            usage = session_state.usage_update(finished.context_tokens, size, conversation.cost_usd)
            await self.host.update(session.id, usage)

    async def set_config_option(self, call: Call) -> dict[str, Any]:
        session = (await self._feed(call.params)).session
        config_id = call.params.get("configId")
        config = self.host.registry.runtime.config
        if config_id == "model":
            set_model(config, session, call.params.get("value"))
        elif config_id == "mode":
            _set_mode(session, call.params.get("value"))
        elif config_id == "thought_level":
            _set_thought_level(session, call.params.get("value"))
        else:
            raise invalid_params(
                f"unknown config option {config_id!r}; this agent has: model, mode, thought_level"
            )
        return {"configOptions": self._options(session)}

    async def set_mode_legacy(self, call: Call) -> dict[str, Any]:
        """The pre-config-options way; config-aware views of the session hear of it too."""
        session = (await self._feed(call.params)).session
        _set_mode(session, call.params.get("modeId"))
        update = session_state.config_option_update(self._options(session))
        await self.host.update(session.id, update)
        return {}

    async def set_model_legacy(self, call: Call) -> dict[str, Any]:
        session = (await self._feed(call.params)).session
        set_model(self.host.registry.runtime.config, session, call.params.get("modelId"))
        update = session_state.config_option_update(self._options(session))
        await self.host.update(session.id, update)
        return {}

    async def _feed(self, params: dict[str, Any]) -> SessionFeed:
        """The feed of the session ``params`` name, attaching a live one this connection has
        not used yet (another connection's, or one in its grace period)."""
        session_id = params.get("sessionId")
        if not isinstance(session_id, str):
            raise invalid_params("sessionId must be a string")
        feed = self.host.feed(session_id)
        if feed is not None:
            return feed
        live = self.host.registry.get(session_id)
        if live is None:
            raise RpcError(
                RESOURCE_NOT_FOUND,
                f"session {session_id} not found; create one with session/new "
                "or load it with session/load",
            )
        return await self.host.attach(live)

    def _options(self, session: Session) -> list[dict[str, Any]]:
        return slash.options(self.host.registry.runtime.config, session)

    def _session_result(self, session: Session) -> dict[str, Any]:
        config = self.host.registry.runtime.config
        mode, reasoning = session.permissions.mode, session.reasoning
        return session_state.session_state(config, session.choice, mode, reasoning)

    def _installed(self) -> list[str]:
        return installed_skills(self.host.registry.runtime.paths.skills_dir)

    def _commands_update(self) -> dict[str, Any]:
        return commands.update(commands.available_commands(self._installed()))

    def _slash(self) -> slash.SlashCommands:
        config = self.host.registry.runtime.config
        return slash.SlashCommands(config, self._installed(), self.host.update)


def retryable(exc: SessionActiveElsewhereError | ServerBusyError) -> RpcError:
    """``data`` says the request may succeed later, and after how many seconds when known
    (not for a file lock, nor for memory: that depends on other sessions)."""
    data: dict[str, Any] = {"retryable": True}
    if isinstance(exc, SessionActiveElsewhereError) and exc.retry_after is not None:
        data["retryAfterSecs"] = exc.retry_after
    return RpcError(INTERNAL_ERROR, exc.public, data)


def _session_id(params: dict[str, Any]) -> str:
    session_id = params.get("sessionId")
    if not isinstance(session_id, str):
        raise invalid_params("sessionId must be a string")
    try:
        uuid.UUID(session_id)
    except ValueError:
        raise invalid_params(f"invalid session id {session_id!r}: expected a UUID") from None
    return session_id


def _set_thought_level(session: Session, value: Any) -> None:
    try:
        session.set_reasoning(value if isinstance(value, str) else repr(value))
    except ConfigError as exc:
        raise invalid_params(exc.public) from None


def _set_mode(session: Session, value: Any) -> None:
    mode = session_state.parse_mode(value)
    if mode is None:
        names = ", ".join(m.value for m in session_state.MODES)
        raise invalid_params(f"unknown mode {value!r}; choose one of: {names}")
    session.permissions.mode = mode
