"""Compaction as the loop and the session run it: measure the next request, run the ladder
with the session's provider as summariser, and append the record to the conversation.

The record is appended in one synchronous step after the ladder finished, so a cancel during
the summary (the one wait) leaves the conversation exactly as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from openheim.agent.compaction.compactor import (
    CompactionSettings,
    Outcome,
    Request,
    Summariser,
    compact,
)
from openheim.agent.compaction.measure import Meter, request_units
from openheim.agent.compaction.summarise import Summary, summarise
from openheim.foundation.models import Conversation, Message, ToolDefinition
from openheim.providers.base import ChatRequest, ProviderEvent


class ChatProvider(Protocol):
    def stream(
        self, request: ChatRequest
    ) -> AbstractAsyncContextManager[AsyncIterator[ProviderEvent]]: ...


def summariser_for(provider: ChatProvider, model: str) -> Summariser:
    """The same provider and model, asked with the fixed summary prompt."""

    async def ask(
        previous: str | None, messages: Sequence[Message], max_chars: int, max_tokens: int
    ) -> Summary | None:
        return await summarise(
            provider, model, previous, messages, max_chars=max_chars, max_tokens=max_tokens
        )

    return ask


async def compact_conversation(
    conversation: Conversation,
    *,
    provider: ChatProvider,
    model: str,
    head: Sequence[Message],
    tools: Sequence[ToolDefinition],
    meter: Meter,
    settings: CompactionSettings,
    force: bool = False,
    manual: bool = False,
) -> Outcome | None:
    """Compact when the next request (``head``, the view, ``tools``) needs it; the record is
    appended to ``conversation`` and returned, ``None`` when nothing changed."""
    outcome = await compact(
        conversation,
        Request(model, request_units(head, tools)),
        meter=meter,
        settings=settings,
        summariser=summariser_for(provider, model),
        force=force,
        manual=manual,
    )
    if outcome is not None:
        conversation.compactions.append(outcome.record)
    return outcome
