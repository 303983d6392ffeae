"""Runs one session's requests, one at a time: a turn, or a compaction the user asked for.

A turn waits for a turn slot (``Runtime.turn_slots``) and for MCP servers still on their
first start, runs, and is saved however it ends. ``cancel`` reaches whichever of those is
current: a cancel must never wait behind the turn it cancels.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import trio

from openheim.agent.events import Compacted, StopReason, TurnFinished
from openheim.agent.loop import Turn, TurnSettings
from openheim.foundation.errors import OpenheimError
from openheim.foundation.models import Prompt, ToolCall, Usage
from openheim.observe import TurnReport
from openheim.session.compacting import compact_session, compaction_settings
from openheim.session.requests import CompactRequest, Request, RequestAnswer
from openheim.tools.base import ToolContext

if TYPE_CHECKING:
    from openheim.session.actor import Session

log = logging.getLogger(__name__)


class TurnRunner:
    """The session's running turn and the waits before it; owned by its ``Session``."""

    def __init__(self, session: Session) -> None:
        self._session = session
        #: The turn running now (the session is busy until it is saved).
        self.turn: Turn | None = None
        #: Cancels a wait before the turn starts: for a turn slot, or for MCP servers.
        self._waiting: trio.CancelScope | None = None

    def cancel(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
        if self.turn is not None:
            self.turn.cancel()

    async def run(self, request: Request) -> RequestAnswer:
        if isinstance(request, CompactRequest):
            return await self._compact_now()
        return await self._run_limited(request.text)

    async def _run_limited(self, text: str | Prompt) -> TurnFinished:
        """Run the turn once a slot is free; a cancel while waiting means it never starts."""
        session = self._session
        async with self._turn_slot() as started:
            if not started:
                return TurnFinished(StopReason.CANCELLED, Usage(), 0)
            attributes = {
                "openheim.session_id": session.id,
                "openheim.tenant": session.runtime.tenant,
                "gen_ai.system": session.choice.provider.name,
                "gen_ai.request.model": session.choice.model,
            }
            with session.runtime.observer.span("openheim.turn", attributes):
                return await self._run_turn(text)

    @contextlib.asynccontextmanager
    async def _turn_slot(self) -> AsyncIterator[bool]:
        """Hold one of ``Runtime.turn_slots`` (when turns are limited) for the body; yields
        False when a cancel came while waiting for it."""
        session = self._session
        slots = session.runtime.turn_slots
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

    async def _compact_now(self) -> Compacted | None:
        """The user's ``/compact``; a cancel stops it and changes nothing."""
        session = self._session
        event = None
        with trio.CancelScope() as waiting:
            self._waiting = waiting
            try:
                event = await compact_session(session)
            finally:
                self._waiting = None
        if event is not None:
            await session.followers.send(event)
        return event

    async def _run_turn(self, text: str | Prompt) -> TurnFinished:
        session = self._session
        choice = session.choice
        provider = await session.runtime.providers.get(choice.provider)
        config = session.runtime.config
        session.conversation.model, session.conversation.provider = (
            choice.model,
            choice.provider.name,
        )
        session.conversation.skills = tuple(skill.name for skill in session.skills)
        session.conversation.cwd = str(session.cwd)
        settings = TurnSettings(
            model=choice.model,
            max_iterations=session.options.max_iterations or config.max_iterations,
            max_tokens=choice.provider.max_tokens,
            system_prompt=session.system_prompt(),
            price=choice.provider.prices.get(choice.model),
            recover_text_tool_calls=choice.provider.recover_text_tool_calls,
            reasoning=session.reasoning,
            compaction=compaction_settings(session.runtime, choice),
        )
        turn = Turn(
            session.conversation,
            text,
            provider=provider,
            tools=session.tools,
            context=ToolContext(
                cwd=session.cwd, session_id=session.id, files=session.files, sandbox=session.sandbox
            ),
            settings=settings,
            events=session.followers,
            approve=self._approve,
            observer=session.runtime.observer,
            meter=session.meter,
        )
        failure: OpenheimError | None = None
        finished: TurnFinished | None = None
        self.turn = turn
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
                    await (session.lease or session.runtime.store).save(session.conversation)
                except OpenheimError as error:
                    if failure is None:
                        failure = error
                    else:  # the caller gets the turn's own error; this one must not vanish
                        log.warning("session %s: %s", session.id, error)
            # Busy until saved: whoever waits for the session to go idle finds it on disk.
            self.turn = None
        session.runtime.observer.turn_finished(
            TurnReport(
                tenant=session.runtime.tenant,
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
        session = self._session
        supervisors = [mcp for mcp in (session.runtime.mcp, session.mcp) if mcp is not None]
        if not any(mcp.first_starts() for mcp in supervisors):
            return
        from openheim.mcp.startup import wait_for_first_starts

        with trio.CancelScope() as waiting:
            self._waiting = waiting
            try:
                await wait_for_first_starts(supervisors, session.followers.send)
            finally:
                self._waiting = None

    async def _approve(self, call: ToolCall) -> str | None:
        session = self._session
        return await session.permissions.check(call, session.asker)
