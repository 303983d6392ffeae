"""One session's events to one ACP client, as ``session/update`` notifications, in order.

A feed follows its session (``Session.follow``): the turn's own task calls ``send`` for each
event, and the updates go straight to the connection's outbound queue. Order then needs no
bookkeeping: every update of a turn is queued before the prompt's reply, and a call's
``tool_call`` before its permission request, because the turn makes them in that order. When
the client falls behind, the transport's queue merges waiting text chunks (``acp.outbox``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from openheim.acp import schema, tool_updates
from openheim.acp.plan import last_plan
from openheim.agent.events import (
    CANCELLED_RESULT,
    AgentEvent,
    McpStartup,
    ToolCallFinished,
    ToolCallProgress,
    ToolCallStarted,
    TurnFinished,
)
from openheim.foundation.models import ToolCall
from openheim.session import Session
from openheim.tools.base import kind_of

SendUpdate = Callable[[dict[str, Any]], Awaitable[None]]


class SessionFeed:
    """Turns one session's events into updates for one connection (an ``EventSink``)."""

    def __init__(self, session: Session, send_update: SendUpdate) -> None:
        self.session = session
        self._send = send_update
        self._open: dict[str, ToolCall] = {}
        self.closed = False
        session.follow(self)

    def close(self) -> None:
        """Stop following the session (the connection let it go)."""
        self.closed = True
        self.session.unfollow(self)

    async def send(self, event: AgentEvent) -> None:
        if self.closed:
            raise trio.ClosedResourceError
        await self._forward(event)

    async def _forward(self, event: AgentEvent) -> None:
        cwd = self.session.cwd
        match event:
            case ToolCallStarted(call=call):
                self._open[call.id] = call
                tool = self.session.tools.get(call.name)
                kind = kind_of(tool) if tool is not None else None
                await self._send(tool_updates.tool_call(call, cwd, kind=kind))
                # An asked call stays pending until the user allows it (the asker says so).
                if not self.session.permissions.would_ask(call):
                    await self._send(tool_updates.tool_call_in_progress(call.id))
            case ToolCallProgress(call=call, output=output):
                if call.id in self._open:  # never after the call's end
                    await self._send(tool_updates.tool_call_progress(call.id, output))
            case ToolCallFinished(call=call):
                self._open.pop(call.id, None)
                for update in schema.updates_for(event, cwd):
                    await self._send(update)
            case TurnFinished():
                # Calls cut off by a cancel get no ToolCallFinished; close them for the client.
                for call_id in list(self._open):
                    await self._send(tool_updates.tool_call_finished(call_id, CANCELLED_RESULT))
                self._open.clear()
            case McpStartup(servers=servers):
                for update in schema.updates_for(event, cwd):
                    await self._send(update)
                settled = all(server.state != "starting" for server in servers)
                if settled and (plan := last_plan(self.session.conversation)) is not None:
                    await self._send(plan)
            case _:
                for update in schema.updates_for(event, cwd):
                    await self._send(update)
