"""Creates, finds and stops sessions; each session actor runs in the registry's nursery.

Actors are lazy: a session gets a task only when it is asked something, and its task ends
after ``[server] session_idle_secs`` of quiet (the session stays live). A session with MCP
servers of its own starts at once and keeps its task, so its servers come up early and stay.

A live session holds its conversation's lease (``openheim.store.lease``) from before it is
loaded until it is closed and its actor has stopped and saved; one task renews every lease of
the registry. A session whose lease is lost (another replica took it, a save was fenced) is
dropped: its turn is cancelled, and its next prompt is told why.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import attrs
import trio

from openheim.config.resolve import ModelChoice, resolve_model
from openheim.foundation.concurrency import open_service_nursery
from openheim.foundation.errors import ConfigError, HistoryError, SessionLimitError, WorkspaceError
from openheim.foundation.models import Conversation
from openheim.session.actor import Session, load_session_skills
from openheim.session.options import SessionOptions
from openheim.session.runtime import Runtime
from openheim.skills import Skill
from openheim.store.base import ConversationMeta
from openheim.store.files import normalise_id
from openheim.store.lease import Lease, OwnershipLostError, keep_leases

log = logging.getLogger(__name__)

RELOAD = "fix: load it again with session/load"


@attrs.frozen
class SessionPolicy:
    """Limits a registry enforces when a session starts (the server gives one per tenant)."""

    #: Live sessions at most; a new or resumed one beyond it is refused.
    max_sessions: int | None = None
    #: Sessions' working folders must lie inside this folder.
    workspace: Path | None = None

    def admit(self, options: SessionOptions, live: int) -> None:
        """Refuse a session whose folders (cwd, additional directories) leave the workspace,
        or one too many."""
        if self.workspace is not None:
            root = self.workspace.resolve()
            for name, folder in (
                ("cwd", options.cwd),
                *(("additional directory", extra) for extra in options.additional_roots),
            ):
                if not folder.resolve().is_relative_to(root):
                    raise WorkspaceError(
                        f"{name} {folder} is outside this workspace ({root})",
                        public=f"{name} {folder} is outside your workspace",
                    )
        if self.max_sessions is not None and live >= self.max_sessions:
            raise SessionLimitError(
                f"too many open sessions (limit {self.max_sessions}); "
                "close one or wait for idle ones to expire"
            )


class SessionRegistry:
    def __init__(
        self, runtime: Runtime, nursery: trio.Nursery, policy: SessionPolicy | None = None
    ) -> None:
        self.runtime = runtime
        self.policy = policy or SessionPolicy()
        self._nursery = nursery
        self._live: dict[str, Session] = {}
        #: The lease of every session started and not yet ended (it may be closing).
        self._leases: dict[str, Lease] = {}
        #: Set when the lease of the id is released: a load waits for the session it ends
        #: (made by the first waiter only).
        self._released: dict[str, trio.Event] = {}
        #: Ids being loaded: a second load waits for the first rather than take a lease twice.
        self._loading: dict[str, trio.Event] = {}

    @classmethod
    @asynccontextmanager
    async def open(
        cls, runtime: Runtime, policy: SessionPolicy | None = None
    ) -> AsyncIterator[SessionRegistry]:
        async with open_service_nursery() as nursery:
            registry = cls(runtime, nursery, policy)
            nursery.start_soon(keep_leases, runtime.store, registry.leases)
            if runtime.memory is not None:
                runtime.memory.watch(registry)
            try:
                yield registry
            finally:
                if runtime.memory is not None:
                    runtime.memory.unwatch(registry)
                registry.close_all()

    async def create(self, options: SessionOptions, *, save: bool = False) -> Session:
        """A new conversation; unknown model or skill names raise before anything starts.
        ``ServerBusyError`` above the server's memory budget. ``save``: store it at once, in
        the same step that takes its lease."""
        self.policy.admit(options, len(self._live))
        await self._admit()
        choice = resolve_model(self.runtime.config, options.model)
        skills = load_session_skills(self.runtime, options.skills or ())
        conversation = Conversation(
            id=str(uuid.uuid4()),
            cwd=str(options.cwd),
            model=choice.model,
            provider=choice.provider.name,
            skills=tuple(skill.name for skill in skills),
        )
        store = self.runtime.store
        lease = await (store.create(conversation) if save else store.acquire(conversation.id))
        return await self._start(conversation, choice, skills, options, lease)

    async def load(self, conversation_id: str, options: SessionOptions) -> Session:
        """The live session with this id, or the stored conversation brought back to life.

        A resumed conversation keeps its provider, model and skills unless ``options`` names
        others. ``SessionActiveElsewhereError`` while another process holds it;
        ``ServerBusyError`` above the memory budget (a live session costs nothing more: it
        is returned whatever the budget).
        """
        conversation_id = normalise_id(conversation_id)  # one spelling per lease
        live = await self._reserve(conversation_id)
        if live is not None:
            return live
        try:
            await self._admit()
            return await self._take(conversation_id, options)
        finally:
            self._unreserve(conversation_id)

    async def _reserve(self, conversation_id: str) -> Session | None:
        """The live session of this id; else None, the id reserved for the caller (until
        ``_unreserve``) once no other request is loading it and no closing session of it
        still holds its lease: this process never takes a lease twice."""
        while True:
            live = self._live.get(conversation_id)
            if live is not None:
                return live
            pending = self._loading.get(conversation_id)
            if pending is None and conversation_id in self._leases:  # closing: wait for it
                pending = self._released.setdefault(conversation_id, trio.Event())
            if pending is None:
                self._loading[conversation_id] = trio.Event()
                return None
            await pending.wait()

    async def _admit(self) -> None:
        if self.runtime.memory is not None:
            await self.runtime.memory.admit()

    def _unreserve(self, conversation_id: str) -> None:
        self._loading.pop(conversation_id).set()

    async def _take(self, conversation_id: str, options: SessionOptions) -> Session:
        """Own the stored conversation, then start its session."""
        lease = await self.runtime.store.acquire(conversation_id)
        try:
            conversation = await lease.load()
            self.policy.admit(options, len(self._live))
            choice, skills, options = self._resumed(conversation, options)
        except BaseException:
            with trio.CancelScope(shield=True):
                await lease.release()
            raise
        return await self._start(conversation, choice, skills, options, lease)

    def _resumed(
        self, conversation: Conversation, options: SessionOptions
    ) -> tuple[ModelChoice, list[Skill], SessionOptions]:
        if options.model or conversation.provider is None:
            choice = resolve_model(self.runtime.config, options.model)
        else:
            try:
                choice = resolve_model(
                    self.runtime.config, conversation.model, provider=conversation.provider
                )
            except ConfigError:  # its provider is gone from the config: use the default
                choice = resolve_model(self.runtime.config, None)
        names = options.skills if options.skills is not None else conversation.skills
        skills = load_session_skills(self.runtime, names)
        return choice, skills, attrs.evolve(options, skills=names)

    async def resume_or_create(
        self,
        options: SessionOptions,
        *,
        resume: str | None = None,
        continue_latest: bool = False,
    ) -> Session:
        """The session ``--resume ID`` / ``--continue`` ask for, else a new one (run, REPL)."""
        if resume:
            return await self.load(resume, options)
        if continue_latest:
            latest = await self.latest_id()
            if latest is None:
                store = self.runtime.paths.history_dir
                raise HistoryError(f"no conversation to continue in {store}")
            return await self.load(latest, options)
        return await self.create(options)

    async def latest_id(self) -> str | None:
        latest = await self.runtime.store.list(limit=1)
        return latest[0].id if latest else None

    def get(self, conversation_id: str) -> Session | None:
        return self._live.get(conversation_id)

    def __len__(self) -> int:
        """How many sessions are live."""
        return len(self._live)

    def sessions(self) -> list[Session]:
        """The live sessions, as of now."""
        return list(self._live.values())

    def leases(self) -> Collection[Lease]:
        """The leases this registry holds (live and closing sessions'): a live view, not a
        copy, for the renewal every few seconds."""
        return self._leases.values()

    async def list(self, limit: int | None = None) -> list[ConversationMeta]:
        return await self.runtime.store.list(limit)

    async def delete(self, conversation_id: str) -> None:
        """Close the session if it is live, then forget its conversation (after the running
        turn, cancelled, has been saved: that save must not bring it back). Refused while
        another process holds it."""
        conversation_id = normalise_id(conversation_id)
        while await self._reserve(conversation_id) is not None:
            self.close(conversation_id)
        try:
            lease = await self.runtime.store.acquire(conversation_id)
            try:
                await self.runtime.store.delete(conversation_id)
            finally:
                with trio.CancelScope(shield=True):
                    await lease.release()
        finally:
            self._unreserve(conversation_id)

    def close(self, conversation_id: str, reason: str | None = None) -> None:
        """Stop the session; ``reason``: what its next prompt is told (else: it is closed)."""
        session = self._live.pop(conversation_id, None)
        if session is not None:
            session.close(reason)

    def close_all(self) -> None:
        for conversation_id in list(self._live):
            self.close(conversation_id)

    def evict(self, session: Session) -> bool:
        """Close an idle session to free memory (the caller saved it); its conversation can
        be loaded again. False when it is no longer live or no longer idle."""
        if self._live.get(session.id) is not session or not session.idle:
            return False
        self.close(session.id, f"session {session.id} was closed to free memory; {RELOAD}")
        return True

    async def _start(
        self,
        conversation: Conversation,
        choice: ModelChoice,
        skills: list[Skill],
        options: SessionOptions,
        lease: Lease,
    ) -> Session:
        eager = any(server.enabled for server in options.mcp_servers)
        session = Session(
            self.runtime,
            conversation,
            choice=choice,
            skills=skills,
            options=options,
            lease=lease,
            # Its MCP servers start with the actor and must come up early, then stay.
            launch=None if eager else self._launch,
            idle_secs=self.runtime.config.server.session_idle_secs,
        )
        lease.state.on_lost = partial(self._lost, session)
        self._live[session.id] = session
        self._leases[session.id] = lease
        if eager:
            await self._nursery.start(self._run, session)
        return session

    def _launch(self, session: Session) -> None:
        """A session's first request since it started or idled out: run its actor."""
        self._nursery.start_soon(self._run, session)

    def _lost(self, session: Session, reason: str) -> None:
        """Another process owns the conversation now: stop this copy before it writes."""
        log.warning("session %s: ownership lost (%s); dropping it", session.id, reason)
        if self._live.get(session.id) is session:
            self.close(session.id, OwnershipLostError(session.id, reason).public)

    async def _run(
        self, session: Session, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The actor's task; once the session has ended (closed, not merely idle), its lease
        is released, exactly once: only one actor task of a session ever ends it (a task
        that idled out had no checkpoint between letting its channel go and returning)."""
        idled = False
        try:
            idled = await session.serve(task_status=task_status)
        finally:
            if not idled:
                await self._ended(session)

    async def _ended(self, session: Session) -> None:
        if self._live.get(session.id) is session:
            del self._live[session.id]
        lease = self._leases[session.id]
        with trio.CancelScope(shield=True):
            try:
                await lease.release()
            except HistoryError as error:  # it runs out on its own
                log.warning("session %s: %s", session.id, error)
        del self._leases[session.id]
        released = self._released.pop(session.id, None)
        if released is not None:
            released.set()
