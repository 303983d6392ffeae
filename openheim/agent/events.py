"""The one event vocabulary every face renders (terminal, ACP, WebSocket)."""

from __future__ import annotations

import enum
from typing import Protocol

import attrs

from openheim.foundation.models import ToolCall, ToolResult, Usage
from openheim.tools.plan_core import Plan


class StopReason(enum.StrEnum):
    """Why a turn ended; the values are ACP's ``stopReason`` words."""

    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    MAX_TURN_REQUESTS = "max_turn_requests"
    REFUSAL = "refusal"
    CANCELLED = "cancelled"


#: The result a tool call gets when a cancel cut it off (in the history, and for clients).
CANCELLED_RESULT = ToolResult(
    "cancelled: the user stopped the turn before this call finished", True
)


@attrs.frozen
class MessageChunk:
    text: str


@attrs.frozen
class ThoughtChunk:
    """A piece of the model's thinking, shown apart from the answer and never part of it."""

    text: str


@attrs.frozen
class ToolCallStarted:
    call: ToolCall


@attrs.frozen
class ToolCallFinished:
    call: ToolCall
    result: ToolResult
    duration: float


@attrs.frozen
class ToolCallProgress:
    """A running call's output so far: its last few KiB, sent at most every ~100 ms while it
    changes (a command's stdout and stderr as they come), for live views."""

    call: ToolCall
    output: str


@attrs.frozen
class PlanUpdated:
    """The model's plan for the task, sent when ``update_plan`` accepts one: always the whole
    list, replacing the one before (as ACP's ``plan`` update does)."""

    entries: Plan


@attrs.frozen
class ProviderRetrying:
    """The provider call failed transiently and will be retried; ``message`` says how."""

    message: str
    attempt: int
    max_attempts: int
    delay: float


@attrs.frozen
class McpServerProgress:
    """One MCP server in the wait before a session's first model request."""

    name: str
    #: ``starting``, ``ready`` or ``failed``.
    state: str
    tool_count: int = 0
    #: Why it failed, in one line.
    error: str | None = None


@attrs.frozen
class McpStartup:
    """The first model request waits for MCP servers still starting, so it offers their tools.

    Sent when the wait begins (every server ``starting``, ``changed`` None) and again each
    time one settles (``changed`` names it); ``servers`` is always the whole list, so a face
    can draw it without keeping state.
    """

    servers: tuple[McpServerProgress, ...]
    changed: str | None = None


@attrs.frozen
class Compacted:
    """The model's view of the conversation was made smaller before a request; ``method`` is
    the most severe ladder step taken (``elide``, ``summary``, ``drop``, ``truncate``)."""

    tokens_before: int
    tokens_after: int
    method: str

    def describe(self) -> str:
        return (
            f"context compacted ({self.method}): ~{self.tokens_before:,} -> "
            f"~{self.tokens_after:,} tokens"
        )


@attrs.frozen
class TurnFinished:
    stop_reason: StopReason
    usage: Usage
    iterations: int
    cost_usd: float | None = None
    #: Tokens the context held after the turn's last request: its prompt plus its reply, as
    #: the provider reported them (0 when it reported none).
    context_tokens: int = 0


AgentEvent = (
    MessageChunk
    | ThoughtChunk
    | ToolCallStarted
    | ToolCallProgress
    | ToolCallFinished
    | PlanUpdated
    | ProviderRetrying
    | McpStartup
    | Compacted
    | TurnFinished
)


class EventSink(Protocol):
    """Where a turn's events go: a channel's send half, or a session's followers.

    ``send`` runs in the task that made the event; it may wait (backpressure), and raises
    ``trio.BrokenResourceError`` or ``trio.ClosedResourceError`` once nobody listens.
    """

    async def send(self, value: AgentEvent, /) -> None: ...
