"""The words the terminal faces (``run`` and the REPL) use for agent events, in one place.

Each face decides where and how a line is drawn (plain stderr, rich styles); what the line says
is shared, so a tool call, a stop reason or a permission question reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from openheim.agent.events import (
    AgentEvent,
    Compacted,
    McpStartup,
    ProviderRetrying,
    StopReason,
    ToolCallFinished,
    TurnFinished,
)
from openheim.foundation.models import ToolCall, ToolResult
from openheim.permissions import Answer
from openheim.tools.edit_core import unified_diff
from openheim.tools.plan_core import PlanEntry, PlanPriority, PlanStatus

#: Diff lines a terminal shows per changed file; the rest is summed up in one line.
DIFF_LINES = 80

_PLAN_MARKS = {
    PlanStatus.PENDING: "☐",
    PlanStatus.IN_PROGRESS: "◐",
    PlanStatus.COMPLETED: "☑",
}
_PLAN_STYLES = {PlanStatus.PENDING: "", PlanStatus.IN_PROGRESS: "bold", PlanStatus.COMPLETED: "dim"}

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


def diff_lines(result: ToolResult, cwd: Path | None = None) -> list[str]:
    """The unified diff of each file a call changed, for a terminal: at most ``DIFF_LINES``
    lines a file, then a note of how many more there were; paths relative to ``cwd`` (the
    process's) when they lie in it. Empty for a failed call."""
    if result.is_error:
        return []
    base = cwd or Path.cwd()
    lines: list[str] = []
    for diff in result.diffs:
        path = Path(diff.path)
        name = str(path.relative_to(base)) if path.is_relative_to(base) else diff.path
        text = unified_diff(diff.old_text or "", diff.new_text, name.lstrip("/"))
        if diff.old_text is None:
            text = text.replace(f"--- a/{name.lstrip('/')}", "--- /dev/null", 1)
        shown = text.splitlines()
        if len(shown) > DIFF_LINES:
            shown = [*shown[:DIFF_LINES], f"… {len(shown) - DIFF_LINES} more diff lines"]
        lines.extend(shown)
    return lines


def diff_style(line: str) -> str:
    """The colour a diff line gets in a rich terminal."""
    if line.startswith(("+++", "---")):
        return "bold"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    if line.startswith("@@"):
        return "cyan"
    return "dim" if line.startswith("…") else ""


def plan_lines(entries: Sequence[PlanEntry]) -> list[tuple[str, str]]:
    """The model's plan as a checklist, each line with the style a rich terminal gives it:
    a heading with the count done, then ``☐`` pending, ``◐`` in progress, ``☑`` done, and
    ``(high)`` after what matters most. The whole plan each time: it replaces the last."""
    if not entries:
        return [("plan cleared", "dim")]
    done = sum(entry.status is PlanStatus.COMPLETED for entry in entries)
    lines = [(f"plan ({done}/{len(entries)} done):", "bold")]
    for entry in entries:
        high = " (high)" if entry.priority is PlanPriority.HIGH else ""
        line = f"  {_PLAN_MARKS[entry.status]} {shorten(entry.content)}{high}"
        lines.append((line, _PLAN_STYLES[entry.status]))
    return lines


def retrying(event: ProviderRetrying) -> str:
    return f"⟳ {event.message}"


def compacted(event: Compacted) -> str:
    return f"· {event.describe()}"


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
