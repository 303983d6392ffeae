"""A session actor: owns one conversation, its working folder, skills and model.

Prompts arrive over a bounded channel and run one at a time; ``cancel()`` reaches the running
turn directly (it must not wait behind the prompt it cancels). Agent events are fanned out to
every subscriber over bounded channels: a slow subscriber slows the turn, never grows memory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import trio

from openheim.agent.compaction.measure import Meter
from openheim.agent.events import (
    AgentEvent,
    Compacted,
    EventSink,
    StopReason,
    ToolCallFinished,
    TurnFinished,
)
from openheim.agent.loop import Turn, TurnSettings
from openheim.agent.prompt import build_system_prompt
from openheim.config.resolve import ModelChoice, resolve_model
from openheim.foundation.errors import ConfigError, OpenheimError
from openheim.foundation.models import Conversation, Prompt, ReasoningLevel, ToolCall, Usage
from openheim.logs import bind_log_context
from openheim.observe import TurnReport
from openheim.permissions import Asker, Mode, SessionPermissions
from openheim.session.compacting import compact_session, compaction_settings
from openheim.session.fanout import FanOut
from openheim.session.options import Attachment, SessionOptions
from openheim.session.requests import CompactRequest, PromptRequest, Request, RequestAnswer
from openheim.session.runtime import Runtime
from openheim.skills import Skill, load_skills
from openheim.store.lease import Lease
from openheim.tools.base import FileAccess, ToolContext, ToolRegistry

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
    ) -> None:
        self.runtime = runtime
        #: This process's ownership of the conversation: saves go through it (None: unowned).
        self.lease = lease
        self._closed_because: str | None = None
        self.conversation = conversation
        self.choice = choice
        self.skills = skills
        self.options = options
        self.cwd = options.cwd
        self.tools: ToolRegistry = runtime.tools()
        #: Where this session's tools may reach, and how they start processes.
        self.sandbox = runtime.sandbox((options.cwd, *options.additional_roots))
        self.permissions = SessionPermissions(
            runtime.config.permissions,
            mode=Mode.AUTO if options.allow_all_tools else Mode.CODE,
            read_only=self.tools.only_reads,
        )
        #: Set once the actor has stopped: its last turn is saved, its MCP servers are gone.
        self.ended = trio.Event()
        #: The faces holding this session (``attach``), the one that answers for it last.
        self._attachments: list[Attachment] = []
        #: This session's own MCP servers while it serves; None when it has none.
        self.mcp: McpSupervisor | None = None
        self._requests, self._inbox = trio.open_memory_channel[Request](REQUEST_BUFFER)
        #: Learns how this session's text turns into tokens, across turns.
        self.meter = Meter()
        #: Who gets this session's events: each event is sent from the task that made it.
        self.followers = FanOut(self._observe)
        self._turn: Turn | None = None
        #: ``set_reasoning``'s level; None follows the config for the current model.
        self._reasoning: ReasoningLevel | None = None
        #: Cancels a wait before the turn starts: for a turn slot (``Runtime.turn_slots``), or
        #: for MCP servers still starting.
        self._waiting: trio.CancelScope | None = None

    @property
    def id(self) -> str:
        return self.conversation.id

    @property
    def busy(self) -> bool:
        return self._turn is not None

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
        try:
            await self._requests.send(request)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise OpenheimError(self._closed_because or f"session {self.id} is closed") from None
        async with answer:
            try:
                result = await answer.receive()
            except trio.EndOfChannel:
                raise OpenheimError(f"session {self.id} closed before answering") from None
        if isinstance(result, OpenheimError):
            raise result
        return result

    async def save(self) -> None:
        """Store the conversation now (turns store it themselves when they end)."""
        await (self.lease or self.runtime.store).save(self.conversation)

    def cancel(self) -> None:
        """Cancel the running turn, if any; the session stays usable."""
        if self._waiting is not None:
            self._waiting.cancel()
        if self._turn is not None:
            self._turn.cancel()

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
        self.cancel()
        self._requests.close()

    # --- the actor ------------------------------------------------------------------------

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        bind_log_context(replace=True, tenant=self.runtime.tenant, session_id=self.id)
        try:
            async with self._own_mcp_servers():
                task_status.started()
                await self._serve_prompts()
        finally:
            self.ended.set()

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

    async def _serve_prompts(self) -> None:
        async with self._inbox:
            async for request in self._inbox:
                try:
                    result: RequestAnswer
                    if isinstance(request, CompactRequest):
                        result = await self._compact_now()
                    else:
                        result = await self._run_limited(request.text)
                except OpenheimError as error:
                    result = error
                except Exception as exc:  # a bug fails this prompt, not the process
                    log.exception("session %s: unexpected error in a turn", self.id)
                    result = OpenheimError(f"internal error: {type(exc).__name__}: {exc}")
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    request.reply.send_nowait(result)
                request.reply.close()
        self.followers.close()

    async def _run_limited(self, text: str | Prompt) -> TurnFinished:
        """Run the turn once a slot is free; a cancel while waiting means it never starts."""
        async with self._turn_slot() as started:
            if not started:
                return TurnFinished(StopReason.CANCELLED, Usage(), 0)
            attributes = {
                "openheim.session_id": self.id,
                "openheim.tenant": self.runtime.tenant,
                "gen_ai.system": self.choice.provider.name,
                "gen_ai.request.model": self.choice.model,
            }
            with self.runtime.observer.span("openheim.turn", attributes):
                return await self._run_turn(text)

    @contextlib.asynccontextmanager
    async def _turn_slot(self) -> AsyncIterator[bool]:
        """Hold one of ``Runtime.turn_slots`` (when turns are limited) for the body; yields
        False when a cancel came while waiting for it."""
        slots = self.runtime.turn_slots
        if slots is None:
            yield True
            return
        with trio.CancelScope() as waiting:
            self._waiting = waiting
            await slots.acquire()
        self._waiting = None
        if waiting.cancelled_caught:
            yield False
            return
        try:
            yield True
        finally:
            slots.release()

    def system_prompt(self) -> str:
        override = self.runtime.config.system_prompt
        return build_system_prompt(cwd=str(self.cwd), skills=self.skills, override=override)

    async def _compact_now(self) -> Compacted | None:
        """The user's ``/compact``; a cancel stops it and changes nothing."""
        event = None
        with trio.CancelScope() as waiting:
            self._waiting = waiting
            try:
                event = await compact_session(self)
            finally:
                self._waiting = None
        if event is not None:
            await self.followers.send(event)
        return event

    def _report_compaction(self, event: Compacted) -> None:
        self.runtime.observer.compaction(
            tenant=self.runtime.tenant,
            method=event.method,
            tokens_saved=event.tokens_before - event.tokens_after,
        )

    async def _run_turn(self, text: str | Prompt) -> TurnFinished:
        choice = self.choice
        provider = await self.runtime.providers.get(choice.provider)
        config = self.runtime.config
        self.conversation.model, self.conversation.provider = choice.model, choice.provider.name
        self.conversation.skills = tuple(skill.name for skill in self.skills)
        self.conversation.cwd = str(self.cwd)
        settings = TurnSettings(
            model=choice.model,
            max_iterations=self.options.max_iterations or config.max_iterations,
            max_tokens=choice.provider.max_tokens,
            system_prompt=self.system_prompt(),
            price=choice.provider.prices.get(choice.model),
            recover_text_tool_calls=choice.provider.recover_text_tool_calls,
            reasoning=self.reasoning,
            compaction=compaction_settings(self.runtime, choice),
        )
        turn = Turn(
            self.conversation,
            text,
            provider=provider,
            tools=self.tools,
            context=ToolContext(
                cwd=self.cwd, session_id=self.id, files=self.files, sandbox=self.sandbox
            ),
            settings=settings,
            events=self.followers,
            approve=self._approve,
            observer=self.runtime.observer,
            meter=self.meter,
        )
        failure: OpenheimError | None = None
        finished: TurnFinished | None = None
        self._turn = turn
        started = trio.current_time()
        try:
            try:
                await self._wait_for_mcp_servers()
                finished = await turn.run()
            except OpenheimError as error:
                failure = error
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await (self.lease or self.runtime.store).save(self.conversation)
                except OpenheimError as error:
                    if failure is None:
                        failure = error
                    else:  # the caller gets the turn's own error; this one must not vanish
                        log.warning("session %s: %s", self.id, error)
            # Busy until saved: whoever waits for the session to go idle finds it on disk.
            self._turn = None
        self.runtime.observer.turn_finished(
            TurnReport(
                tenant=self.runtime.tenant,
                provider=choice.provider.name,
                model=choice.model,
                stop_reason=finished.stop_reason.value if finished else "error",
                usage=finished.usage if finished else Usage(),
                cost_usd=finished.cost_usd if finished else None,
                seconds=trio.current_time() - started,
            )
        )
        if failure is not None:
            raise failure
        assert finished is not None
        return finished

    async def _wait_for_mcp_servers(self) -> None:
        """Before the model is first asked: wait for MCP servers still on their first start
        (the operator's and this session's), so the request offers their tools. A cancel
        ends the wait, and the turn then ends cancelled."""
        supervisors = [mcp for mcp in (self.runtime.mcp, self.mcp) if mcp is not None]
        if not any(mcp.first_starts() for mcp in supervisors):
            return
        from openheim.mcp.startup import wait_for_first_starts

        with trio.CancelScope() as waiting:
            self._waiting = waiting
            try:
                await wait_for_first_starts(supervisors, self.followers.send)
            finally:
                self._waiting = None

    async def _approve(self, call: ToolCall) -> str | None:
        return await self.permissions.check(call, self.asker)

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
