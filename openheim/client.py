"""``OpenheimClient``: the whole runtime as a library, trio-native.

    async with OpenheimClient.open() as client:
        session = await client.new_session()
        print(await session.prompt("What is in this folder?"))

It drives the same session engine as every other face: sessions, history, skills, tools,
permissions and providers behave exactly as they do for ``openheim run`` or ``openheim acp``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from openheim.agent.events import AgentEvent, TurnFinished
from openheim.config.load import load_config
from openheim.config.model import Config
from openheim.config.paths import Paths
from openheim.foundation.concurrency import Failed, ResultStream, open_service_nursery
from openheim.foundation.errors import OpenheimError
from openheim.foundation.models import Conversation, Role, ToolDefinition
from openheim.permissions import Asker
from openheim.session import (
    ConversationMeta,
    Session,
    SessionOptions,
    SessionRegistry,
    catalog,
    open_runtime,
)
from openheim.session.runtime import Runtime
from openheim.tools.base import Tool

STREAM_BUFFER = 64

__all__ = ["ClientSession", "OpenheimClient"]


class OpenheimClient:
    """Owns a runtime and its sessions for as long as the ``async with`` block runs."""

    def __init__(self, runtime: Runtime, sessions: SessionRegistry, tools: list[Tool]) -> None:
        self._runtime = runtime
        self._sessions = sessions
        self._tools = tools

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        *,
        home: Path | str | None = None,
        config: Config | None = None,
        env: Mapping[str, str] | None = None,
        tools: Iterable[Tool] = (),
    ) -> AsyncIterator[OpenheimClient]:
        """Open the runtime: ``home`` defaults to ``$OPENHEIM_HOME`` or ``~/.openheim`` and
        ``config`` to its ``config.toml``; ``env`` (for API keys) to ``os.environ``."""
        env = dict(os.environ if env is None else env)
        paths = _paths(home, env)
        config = config or load_config(paths.config_file)
        user_tools: list[Tool] = []
        async with (
            open_runtime(config, paths, env=env, extra_tools=lambda: list(user_tools)) as runtime,
            SessionRegistry.open(runtime) as sessions,
        ):
            client = cls(runtime, sessions, user_tools)
            for tool in tools:
                client.register_tool(tool)
            yield client

    def register_tool(self, tool: Tool) -> None:
        """Make ``tool`` available to every session created or loaded after this call."""
        name = tool.definition.name
        if name in self._runtime.tools() or any(t.definition.name == name for t in self._tools):
            raise ValueError(f"a tool named {name!r} is already registered")
        self._tools.append(tool)

    def tools(self) -> list[ToolDefinition]:
        return list(self._runtime.tools().definitions())

    def models(self) -> dict[str, list[str]]:
        """Configured models per provider."""
        return {name: list(p.models) for name, p in sorted(self._runtime.config.providers.items())}

    async def new_session(
        self,
        *,
        cwd: Path | str | None = None,
        model: str | None = None,
        skills: Iterable[str] = (),
        allow_all_tools: bool = False,
        asker: Asker | None = None,
    ) -> ClientSession:
        """A new conversation. ``asker`` answers ``ask`` permissions; without it they are
        denied unless ``allow_all_tools``."""
        options = self._options(cwd, model, tuple(skills), allow_all_tools)
        return self._wrap(await self._sessions.create(options), asker)

    async def load_session(
        self,
        session_id: str,
        *,
        cwd: Path | str | None = None,
        model: str | None = None,
        allow_all_tools: bool = False,
        asker: Asker | None = None,
    ) -> ClientSession:
        """Continue a stored conversation with its own skills (and model, unless given)."""
        options = self._options(cwd, model, None, allow_all_tools)
        return self._wrap(await self._sessions.load(session_id, options), asker)

    async def list_sessions(self, limit: int | None = None) -> list[ConversationMeta]:
        """Stored conversations, newest first."""
        return await catalog.list_conversations(self._sessions, limit)

    def _options(
        self,
        cwd: Path | str | None,
        model: str | None,
        skills: tuple[str, ...] | None,
        allow_all_tools: bool,
    ) -> SessionOptions:
        folder = Path(cwd).expanduser().absolute() if cwd else Path.cwd()
        return SessionOptions(
            cwd=folder, model=model, skills=skills, allow_all_tools=allow_all_tools
        )

    @staticmethod
    def _wrap(session: Session, asker: Asker | None) -> ClientSession:
        return ClientSession(session, asker)


def _paths(home: Path | str | None, env: Mapping[str, str]) -> Paths:
    return Paths(Path(home).expanduser().absolute()) if home else Paths.from_env(env)


class ClientSession:
    """One conversation. Prompts on a session run one after another."""

    def __init__(self, session: Session, asker: Asker | None = None) -> None:
        self._session = session
        #: Asked about ``ask`` tools while this handle runs a turn.
        self._asker = asker

    @property
    def id(self) -> str:
        return self._session.id

    @property
    def conversation(self) -> Conversation:
        return self._session.conversation

    @property
    def model(self) -> str:
        return self._session.choice.label

    def set_model(self, spec: str) -> None:
        self._session.set_model(spec)

    @property
    def reasoning(self) -> str:
        """The reasoning level of the next turn: ``off``, ``low``, ``medium`` or ``high``."""
        return self._session.reasoning.value

    def set_reasoning(self, level: str | None) -> None:
        """Override the config's reasoning level for this session; ``None`` restores it."""
        self._session.set_reasoning(level)

    def cancel(self) -> None:
        """Cancel the running turn; its ``prompt()`` returns and the session stays usable."""
        self._session.cancel()

    async def prompt(self, text: str) -> str:
        """Run one turn and return the answer: the text the model wrote after its last tool
        call. Raises ``OpenheimError`` subclasses (``ProviderError``, ...) on failure."""
        start = len(self._session.conversation.messages)
        async with self._session.attach(self._asker):
            await self._session.prompt(text)
        turn = self._session.conversation.messages[start:]
        last = next((m for m in reversed(turn) if m.role is Role.ASSISTANT), None)
        return (last.content or "") if last is not None and not last.tool_calls else ""

    @asynccontextmanager
    async def stream(self, text: str) -> AsyncIterator[AsyncIterator[AgentEvent]]:
        """Run one turn, yielding its events as they happen; the last is ``TurnFinished``.

        Use as ``async with session.stream(text) as events: async for event in events``.
        A failure is raised from the iteration after the events that preceded it.
        """
        send, receive = trio.open_memory_channel[AgentEvent | Failed](STREAM_BUFFER)
        async with open_service_nursery() as nursery:
            await nursery.start(self._pump, text, send)
            with receive:
                yield ResultStream(receive)

    async def _pump(
        self,
        text: str,
        send: trio.MemorySendChannel[AgentEvent | Failed],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        events = self._session.subscribe()
        task_status.started()
        async with send:
            with events:
                failure: OpenheimError | None = None
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_forward, events, send)
                    try:
                        async with self._session.attach(self._asker):
                            await self._session.prompt(text)
                    except OpenheimError as error:
                        failure = error
                        nursery.cancel_scope.cancel()
                if failure is not None:
                    # The turn's events are all queued by now: hand them on, then the error.
                    while True:
                        try:
                            await send.send(events.receive_nowait())
                        except trio.WouldBlock:
                            break
                    await send.send(Failed(failure))


async def _forward(
    events: trio.MemoryReceiveChannel[AgentEvent],
    send: trio.MemorySendChannel[AgentEvent | Failed],
) -> None:
    async for event in events:
        await send.send(event)
        if isinstance(event, TurnFinished):
            return
