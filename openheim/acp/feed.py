"""One session's events to one ACP client, as ``session/update`` notifications, in order.

Each attached session has one feed task. It counts what it took and what it sent, so a prompt
can wait for "everything of my turn" before answering (updates before the reply), and it notes
when each call's ``tool_call`` went out, so a permission request never overtakes its call.
When the client falls behind, waiting text chunks go out merged into one update.
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
    MessageChunk,
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
    """Sends one session's events as updates, from one task (``run``)."""

    def __init__(
        self,
        session: Session,
        events: trio.MemoryReceiveChannel[AgentEvent],
        send_update: SendUpdate,
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

    def _wake(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

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
                self._started.setdefault(call.id, trio.Event()).set()
            case ToolCallProgress(call=call, output=output):
                if call.id in self._open:  # never after the call's end
                    await self._send(tool_updates.tool_call_progress(call.id, output))
            case ToolCallFinished(call=call):
                self._open.pop(call.id, None)
                self._started.pop(call.id, None)
                for update in schema.updates_for(event, cwd):
                    await self._send(update)
            case TurnFinished():
                # Calls cut off by a cancel get no ToolCallFinished; close them for the client.
                for call_id in list(self._open):
                    await self._send(tool_updates.tool_call_finished(call_id, CANCELLED_RESULT))
                self._open.clear()
                self._started.clear()
            case McpStartup(servers=servers):
                for update in schema.updates_for(event, cwd):
                    await self._send(update)
                settled = all(server.state != "starting" for server in servers)
                if settled and (plan := last_plan(self.session.conversation)) is not None:
                    await self._send(plan)
            case _:
                for update in schema.updates_for(event, cwd):
                    await self._send(update)
