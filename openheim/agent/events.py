"""The one event vocabulary every face renders (terminal, ACP, WebSocket)."""

from __future__ import annotations

import enum

import attrs

from openheim.foundation.models import ToolCall, ToolResult, Usage


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
class ProviderRetrying:
    """The provider call failed transiently and will be retried; ``message`` says how."""

    message: str
    attempt: int
    max_attempts: int
    delay: float


@attrs.frozen
class TurnFinished:
    stop_reason: StopReason
    usage: Usage
    iterations: int
    cost_usd: float | None = None


AgentEvent = (
    MessageChunk
    | ToolCallStarted
    | ToolCallProgress
    | ToolCallFinished
    | ProviderRetrying
    | TurnFinished
)
