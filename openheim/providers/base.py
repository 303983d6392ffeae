"""What every provider speaks internally, whatever its wire format.

A provider *dialect* is a sans-IO core: it builds the HTTP request for a ``ChatRequest``,
decodes the response byte stream into ``ProviderEvent``s and turns an error response into a
``ProviderError``. ``openheim.providers.client`` does the I/O around any dialect.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import (
    Message,
    Reasoning,
    ReasoningLevel,
    ToolCall,
    ToolDefinition,
    Usage,
)


class FinishReason(enum.StrEnum):
    STOP = "stop"
    TOOL_CALLS = "tool_calls"
    LENGTH = "length"
    REFUSAL = "refusal"
    OTHER = "other"


@attrs.frozen
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolDefinition, ...] = ()
    max_tokens: int | None = None
    #: How hard the model should think; each dialect says it in its own words, or not at all.
    reasoning: ReasoningLevel = ReasoningLevel.OFF


#: Thinking tokens per level where a provider takes a budget (Anthropic, Gemini). Within
#: every current model's range: Anthropic needs at least 1024, Gemini Flash allows 24576.
THINKING_BUDGETS = {
    ReasoningLevel.LOW: 2048,
    ReasoningLevel.MEDIUM: 8192,
    ReasoningLevel.HIGH: 24576,
}


def thinking_budget(level: ReasoningLevel) -> int | None:
    """The token budget for ``level``; ``None`` when reasoning is off."""
    return THINKING_BUDGETS.get(level)


@attrs.frozen
class HttpRequest:
    """A request ready to send; ``headers`` may hold the key, so never log this object."""

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(repr=False)
    json: Any = attrs.field(repr=False)


# --- events a provider stream yields, in order -------------------------------------------


@attrs.frozen
class TextDelta:
    text: str


@attrs.frozen
class ThinkingDelta:
    """A piece of the model's visible thinking: shown to people, never part of the answer."""

    text: str


@attrs.frozen
class StreamEnd:
    """The stream finished; carries the assembled assistant output."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    usage: Usage | None
    #: The thinking that came before the answer, with what the provider needs back.
    reasoning: Reasoning | None = None


@attrs.frozen
class Retrying:
    """A request failed before any output and will be retried after ``delay`` seconds."""

    attempt: int
    max_attempts: int
    delay: float
    error: ProviderError = attrs.field(eq=False)

    def describe(self) -> str:
        return (
            f"{self.error}; retrying in {self.delay:.1f} s "
            f"(attempt {self.attempt + 1}/{self.max_attempts})"
        )


ProviderEvent = TextDelta | ThinkingDelta | StreamEnd | Retrying


class StreamDecoder(Protocol):
    """Turns response body bytes into events; fed in arbitrary splits."""

    def feed(self, data: bytes) -> list[ProviderEvent]: ...

    def close(self) -> list[ProviderEvent]:
        """The body ended: return the final events, or raise ``ProviderError`` if truncated."""
        ...


class Dialect(Protocol):
    """A provider's wire format, with no I/O."""

    name: str

    def build_request(self, request: ChatRequest, api_key: str | None) -> HttpRequest: ...

    def new_decoder(self) -> StreamDecoder: ...

    def parse_error(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> ProviderError: ...
