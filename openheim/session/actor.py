"""A session actor: owns one conversation, its working folder, skills and model.

Prompts arrive over a bounded channel and run one at a time (``turns.TurnRunner``);
``cancel()`` reaches the running turn directly (it must not wait behind the prompt it
cancels). Agent events go to every follower from the task that makes them (``FanOut``): a
slow follower slows the turn, never grows memory.

Given a ``launch`` callback (the registry's), the actor is lazy: an idle session holds no task
and no request channel. Its first request opens the channel and launches ``serve``; after
``idle_secs`` with no request, ``serve`` returns and frees both, while the session (its
conversation, options and lease) stays; the next request launches it again.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import trio

from openheim.agent.compaction.measure import Meter
from openheim.agent.events import (
    AgentEvent,
    Compacted,
    EventSink,
    ToolCallFinished,
    TurnFinished,
)
from openheim.agent.prompt import build_system_prompt
from openheim.config.resolve import ModelChoice, resolve_model
from openheim.foundation.errors import ConfigError, OpenheimError
from openheim.foundation.models import Conversation, Prompt, ReasoningLevel
from openheim.logs import bind_log_context
from openheim.permissions import Asker, Mode, SessionPermissions
from openheim.sandbox.sandbox import Sandbox
from openheim.session.fanout import FanOut
from openheim.session.options import Attachment, SessionOptions
from openheim.session.requests import CompactRequest, PromptRequest, Request, RequestAnswer
from openheim.session.runtime import Runtime
from openheim.session.turns import TurnRunner
from openheim.skills import Skill, load_skills
from openheim.store.lease import Lease
from openheim.tools.base import FileAccess, ToolRegistry

if TYPE_CHECKING:
    from openheim.mcp.supervisor import McpSupervisor

log = logging.getLogger(__name__)

REQUEST_BUFFER = 8
SUBSCRIBER_BUFFER = 256


class Session:
    """Handle and actor in one object; every method is safe to call from any trio task."""

    def __init__(
        self,
        runtime: Runtime,
        conversation: Conversation,
        *,
        choice: ModelChoice,
        skills: list[Skill],
        options: SessionOptions,
        lease: Lease | None = None,
        launch: Callable[[Session], None] | None = None,
        idle_secs: float | None = None,
    ) -> None:
        """``launch`` runs ``serve`` as a task of the owner's; None: the owner runs ``serve``
        itself now (the channel opens at once). ``idle_secs``: the quiet period after which
        ``serve`` returns (None: never; only with ``launch``, which starts it again)."""
        self.runtime = runtime
        #: This process's ownership of the conversation: saves go through it (None: unowned).
        self.lease = lease
        self._closed_because: str | None = None
        self.conversation = conversation
        self.choice = choice
        self.skills = skills
        self.options = options
        self.cwd = options.cwd
        # Built on first use (a turn, a tool lookup): most idle sessions never need them.
        self._tools: ToolRegistry | None = None
        self._sandbox: Sandbox | None = None
        self._meter: Meter | None = None
        self.permissions = SessionPermissions(
            runtime.config.permissions,
            mode=Mode.AUTO if options.allow_all_tools else Mode.CODE,
            read_only=self._only_reads,
        )
        #: Set once the actor has stopped: its last turn is saved, its MCP servers are gone.
        self.ended = trio.Event()
        #: The faces holding this session (``attach``), the one that answers for it last.
        self._attachments: list[Attachment] = []
        #: This session's own MCP servers while it serves; None when it has none.
        self.mcp: McpSupervisor | None = None
        self._launch = launch
        self._idle_secs = idle_secs if launch is not None else None
        #: The request channel while the actor serves (None: stopped; ``_wake`` starts it).
        self._requests: trio.MemorySendChannel[Request] | None = None
        self._inbox: trio.MemoryReceiveChannel[Request] | None = None
        self._closed = False
        #: Requests asked and not yet answered: a session with none is idle.
        self._asking = 0
        #: When the session was last asked or answered something (``trio.current_time``).
        self.last_active = trio.current_time()
        if launch is None:
            self._open_inbox()
        #: Who gets this session's events: each event is sent from the task that made it.
        self.followers = FanOut(self._observe)
        #: Runs the requests; holds the running turn.
        self._runner = TurnRunner(self)
        #: ``set_reasoning``'s level; None follows the config for the current model.
        self._reasoning: ReasoningLevel | None = None

    @property
    def id(self) -> str:
        return self.conversation.id

    @property
    def busy(self) -> bool:
        return self._runner.turn is not None

    @property
    def idle(self) -> bool:
        """No request running or queued: evicting it loses nothing once it is saved."""
        return self._asking == 0 and self._runner.turn is None and not self._closed

    @property
    def serving(self) -> bool:
        """Whether the actor holds a task and a request channel now."""
        return self._requests is not None and not self._closed

    @property
    def tools(self) -> ToolRegistry:
        """This session's tools; MCP tools are live in it, there once connected."""
        if self._tools is None:
            self._tools = self.runtime.tools()
        return self._tools

    @property
    def sandbox(self) -> Sandbox:
        """Where this session's tools may reach, and how they start processes."""
        if self._sandbox is None:
            self._sandbox = self.runtime.sandbox((self.cwd, *self.options.additional_roots))
        return self._sandbox

    @property
    def meter(self) -> Meter:
        """Learns how this session's text turns into tokens, across turns."""
        if self._meter is None:
            self._meter = Meter()
        return self._meter

    @property
    def attached(self) -> bool:
        """Whether a face holds the session now (``attach``)."""
        return bool(self._attachments)

    def _only_reads(self, name: str) -> bool:
        return self.tools.only_reads(name)

    @property
    def asker(self) -> Asker | None:
        """How to ask the user about an ``ask`` tool: the latest attached face's; None = nobody."""
        return self._attachments[-1].asker if self._attachments else None

    @property
    def files(self) -> FileAccess | None:
        """The latest attached face's file access (an editor's buffers); None = the local disk."""
        for attachment in reversed(self._attachments):
            if attachment.files is not None:
                return attachment.files
        return None

    @contextlib.asynccontextmanager
    async def attach(
        self, asker: Asker | None, files: FileAccess | None = None
    ) -> AsyncIterator[Attachment]:
        """A face's hold on this session for the ``async with`` body: while held, the face (the
        latest to attach or ``claim``) answers permission questions and, given ``files``,
        serves the file tools. Leaving hands both back to the face attached before it."""
        attachment = self.hold(asker, files)
        try:
            yield attachment
        finally:
            attachment.release()

    def hold(self, asker: Asker | None, files: FileAccess | None = None) -> Attachment:
        """``attach`` without the ``async with``: the caller releases the attachment."""
        attachment = Attachment(asker, files, self._attachments)
        self._attachments.append(attachment)
        return attachment

    # --- the handle -----------------------------------------------------------------------

    async def prompt(self, text: str | Prompt) -> TurnFinished:
        """Run one turn (after any queued before it); events go to subscribers meanwhile.

        A ``Prompt`` brings images along with the text (an editor's pasted screenshot)."""
        reply, answer = trio.open_memory_channel[RequestAnswer](1)
        result = await self._ask(PromptRequest(text, reply), answer)
        assert isinstance(result, TurnFinished)
        return result

    async def compact(self) -> Compacted | None:
        """Compact the conversation now, whatever its size (``/compact``), after any turn
        queued before; ``None`` when there is nothing to compact. Saved at once."""
        reply, answer = trio.open_memory_channel[RequestAnswer](1)
        result = await self._ask(CompactRequest(reply), answer)
        assert result is None or isinstance(result, Compacted)
        return result

    async def _ask(
        self,
        request: Request,
        answer: trio.MemoryReceiveChannel[RequestAnswer],
    ) -> RequestAnswer:
        self._asking += 1
        try:
            if self.runtime.memory is not None:  # counted as asking: never evicted for itself
                await self.runtime.memory.admit()
            while True:
                if self._closed:
                    raise OpenheimError(self._closed_because or f"session {self.id} is closed")
                try:
                    await self._wake().send(request)
                    break
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    continue  # the actor idled out meanwhile, or the session was closed
            async with answer:
                try:
                    result = await answer.receive()
                except trio.EndOfChannel:
                    raise OpenheimError(f"session {self.id} closed before answering") from None
        finally:
            self._asking -= 1
            self.last_active = trio.current_time()
        if isinstance(result, OpenheimError):
            raise result
        return result

    def _wake(self) -> trio.MemorySendChannel[Request]:
        """The request channel; a stopped actor gets a new one and is launched."""
        if self._requests is None:
            assert self._launch is not None
            requests = self._open_inbox()
            self._launch(self)
            return requests
        return self._requests

    def _open_inbox(self) -> trio.MemorySendChannel[Request]:
        self._requests, self._inbox = trio.open_memory_channel[Request](REQUEST_BUFFER)
        return self._requests

    async def save(self) -> None:
        """Store the conversation now (turns store it themselves when they end)."""
        await (self.lease or self.runtime.store).save(self.conversation)

    def cancel(self) -> None:
        """Cancel the running turn, if any; the session stays usable."""
        self._runner.cancel()

    def set_model(self, spec: str) -> ModelChoice:
        """Takes effect from the next turn; raises ``ConfigError`` for an unknown model."""
        self.choice = resolve_model(self.runtime.config, spec)
        return self.choice

    def use_skill(self, name: str) -> bool:
        """Add an installed skill to the session from the next turn; False when it is already
        in use. Raises ``SkillError`` for a skill that is not installed."""
        if any(skill.name == name for skill in self.skills):
            return False
        self.skills.extend(load_session_skills(self.runtime, (name,)))
        self.conversation.skills = tuple(skill.name for skill in self.skills)
        return True

    @property
    def reasoning(self) -> ReasoningLevel:
        """The level the next turn asks for: ``set_reasoning``'s, else the config's."""
        if self._reasoning is not None:
            return self._reasoning
        return self.choice.provider.reasoning_for(self.choice.model)

    def set_reasoning(self, level: ReasoningLevel | str | None) -> ReasoningLevel:
        """Override the reasoning level for this session from the next turn; ``None`` goes
        back to the config. Raises ``ConfigError`` for an unknown level."""
        if level is None:
            self._reasoning = None
        else:
            try:
                self._reasoning = ReasoningLevel(level)
            except ValueError:
                choices = ", ".join(item.value for item in ReasoningLevel)
                raise ConfigError(
                    f"unknown reasoning level {level!r}; fix: use one of {choices}"
                ) from None
        return self.reasoning

    def subscribe(self, buffer: int = SUBSCRIBER_BUFFER) -> trio.MemoryReceiveChannel[AgentEvent]:
        """Events of every later turn; close the returned channel to unsubscribe."""
        return self.followers.subscribe(buffer)

    def follow(self, follower: EventSink) -> None:
        """Send every later event to ``follower``, from the task that makes it (no channel,
        no task of its own); ``unfollow`` stops it."""
        self.followers.follow(follower)

    def unfollow(self, follower: EventSink) -> None:
        self.followers.unfollow(follower)

    def close(self, reason: str | None = None) -> None:
        """Stop the actor: a running turn is cancelled and saved first; ``reason`` is what a
        later prompt is told."""
        self._closed_because = self._closed_because or reason
        self._closed = True
        self.cancel()
        if self._requests is None and self._launch is not None:
            # Stopped: launch it on a closed channel, so ending takes the one path.
            self._wake()
        if self._requests is not None:
            self._requests.close()

    # --- the actor ------------------------------------------------------------------------

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> bool:
        """Answer requests until closed (``ended`` is then set), or until idle for
        ``idle_secs``: then only the task and its channel go, and it returns True."""
        bind_log_context(replace=True, tenant=self.runtime.tenant, session_id=self.id)
        idled = False
        try:
            async with self._own_mcp_servers():
                task_status.started()
                idled = await self._serve_prompts()
        finally:
            if not idled:
                self.ended.set()
        return idled

    @contextlib.asynccontextmanager
    async def _own_mcp_servers(self) -> AsyncIterator[None]:
        """Start the client's servers in the background; stop them (and their processes)
        when the session ends."""
        servers = [server for server in self.options.mcp_servers if server.enabled]
        if not servers:
            yield
            return
        from openheim.mcp.supervisor import open_mcp_supervisor

        supervisor = open_mcp_supervisor(
            servers,
            log_dir=self.runtime.paths.logs_dir,
            output_limit=self.runtime.config.tools.output_limit_bytes,
            # A tenant's servers are its own code: they run confined like its commands.
            sandbox=self.sandbox if self.runtime.confined_tenant else None,
        )
        async with supervisor as mcp:
            self.mcp = mcp
            self.tools.add_source(mcp)
            try:
                yield
            finally:
                self.tools.remove_source(mcp)
                self.mcp = None

    async def _serve_prompts(self) -> bool:
        """Answer requests in turn; True when it stopped for being idle, False when closed."""
        inbox = self._inbox
        assert inbox is not None
        try:
            while (request := await self._next_request(inbox)) is not None:
                try:
                    result = await self._runner.run(request)
                except OpenheimError as error:
                    result = error
                except Exception as exc:  # a bug fails this prompt, not the process
                    log.exception("session %s: unexpected error in a turn", self.id)
                    result = OpenheimError(f"internal error: {type(exc).__name__}: {exc}")
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    request.reply.send_nowait(result)
                request.reply.close()
        finally:
            inbox.close()  # synchronous: nobody can wake the session between this and the end
        if self._inbox is not inbox:
            return True
        self.followers.close()
        return False

    async def _next_request(self, inbox: trio.MemoryReceiveChannel[Request]) -> Request | None:
        """The next request; None once the session is closed, or after ``idle_secs`` without
        one (the channel is then let go first, so the next request launches a new actor)."""
        with trio.move_on_after(self._idle_secs or math.inf):
            try:
                return await inbox.receive()
            except trio.EndOfChannel:
                return None
        try:
            return inbox.receive_nowait()  # sent as the quiet period ran out
        except trio.EndOfChannel:
            return None
        except trio.WouldBlock:
            if not self._closed:
                self._requests = self._inbox = None
            return None

    def system_prompt(self) -> str:
        override = self.runtime.config.system_prompt
        return build_system_prompt(cwd=str(self.cwd), skills=self.skills, override=override)

    def _report_compaction(self, event: Compacted) -> None:
        self.runtime.observer.compaction(
            tenant=self.runtime.tenant,
            method=event.method,
            tokens_saved=event.tokens_before - event.tokens_after,
        )

    def _observe(self, event: AgentEvent) -> None:
        """Every event, before any follower has it: what the metrics count."""
        if isinstance(event, ToolCallFinished):
            self.runtime.observer.tool_call(
                tenant=self.runtime.tenant,
                tool=event.call.name,
                is_error=event.result.is_error,
                seconds=event.duration,
            )
        elif isinstance(event, Compacted):
            self._report_compaction(event)


def load_session_skills(runtime: Runtime, names: tuple[str, ...]) -> list[Skill]:
    return load_skills(runtime.paths.skills_dir, names)
