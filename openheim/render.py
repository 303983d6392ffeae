"""The words the terminal faces (``run`` and the REPL) use for agent events, in one place.

Each face decides where and how a line is drawn (plain stderr, rich styles); what the line says
is shared, so a tool call, a stop reason or a permission question reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from openheim.agent.events import (
    AgentEvent,
    McpStartup,
    ProviderRetrying,
    StopReason,
    ToolCallFinished,
    TurnFinished,
)
from openheim.foundation.models import ToolCall
from openheim.permissions import Answer

_ANSWERS = {
    "y": Answer.ALLOW_ONCE,
    "a": Answer.ALLOW_ALWAYS,
    "n": Answer.REJECT_ONCE,
    "v": Answer.REJECT_ALWAYS,
}


def shorten(text: str, limit: int = 160) -> str:
    """One line of at most ``limit`` characters: arguments and errors can be huge."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_started(call: ToolCall) -> str:
    return f"→ {call.name} {shorten(call.arguments)}"


def tool_finished(event: ToolCallFinished) -> str:
    """``✓ name (0.12 s)``, or ``✗ name (0.12 s): first line of the error``."""
    result = event.result
    mark = "✗" if result.is_error else "✓"
    first = result.content.strip().splitlines()[0] if result.content.strip() else ""
    detail = f": {shorten(first)}" if result.is_error else ""
    return f"{mark} {event.call.name} ({event.duration:.2f} s){detail}"


def retrying(event: ProviderRetrying) -> str:
    return f"⟳ {event.message}"


def mcp_startup(event: McpStartup) -> str:
    """The wait for MCP servers before the first request, or how one of them settled."""
    if event.changed is None:
        return f"waiting for MCP servers: {', '.join(s.name for s in event.servers)}…"
    server = next(s for s in event.servers if s.name == event.changed)
    if server.state == "ready":
        tools = "tool" if server.tool_count == 1 else "tools"
        return f"MCP server {server.name}: ready ({server.tool_count} {tools})"
    return f"MCP server {server.name} failed: {server.error}; going on without it"


def permission_question(call: ToolCall) -> str:
    return f"Allow {call.name} {shorten(call.arguments)}? [y]es / [n]o / [a]lways / ne[v]er: "


def parse_answer(text: str) -> Answer:
    """The first letter decides; anything else (an empty line too) rejects this once."""
    return _ANSWERS.get(text.strip().lower()[:1], Answer.REJECT_ONCE)


def stop_note(outcome: TurnFinished, *, resume: str | None = None) -> str | None:
    """What to tell the user when a turn ended short of ``end_turn``; ``None`` when it did not.

    ``resume`` is the command that continues this conversation, for faces that exit after the
    turn; the REPL passes none because its next prompt continues.
    """
    match outcome.stop_reason:
        case StopReason.CANCELLED:
            return (
                f"cancelled; the conversation is saved, resume with: {resume}"
                if resume
                else "cancelled"
            )
        case StopReason.MAX_TURN_REQUESTS:
            hint = f"continue with: {resume}" if resume else "send another prompt to continue"
            return f"stopped: max iterations reached ({outcome.iterations}); {hint}"
        case StopReason.MAX_TOKENS:
            return "note: the answer was cut off at the provider's output token limit"
        case StopReason.REFUSAL:
            return "note: the provider refused to answer"
        case _:
            return None


async def show_events(
    events: trio.MemoryReceiveChannel[AgentEvent], show: Callable[[AgentEvent], None]
) -> None:
    async for event in events:
        show(event)


def drain_events(
    events: trio.MemoryReceiveChannel[AgentEvent], show: Callable[[AgentEvent], None]
) -> None:
    """Show what is still queued, then unsubscribe (closing the channel does that).

    A turn's events are all queued by the time ``Session.prompt`` returns, so after it the
    face drains instead of waiting."""
    with events:
        while True:
            try:
                show(events.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return
