"""A session's compaction settings, and the compaction the user asks for (``/compact``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openheim.agent.compaction.compactor import CompactionSettings
from openheim.agent.compaction.runner import compact_conversation
from openheim.agent.events import Compacted
from openheim.config.context_windows import context_window
from openheim.config.resolve import ModelChoice
from openheim.foundation.models import Message
from openheim.session.runtime import Runtime

if TYPE_CHECKING:
    from openheim.session.actor import Session


def compaction_settings(runtime: Runtime, choice: ModelChoice) -> CompactionSettings:
    """The model's window; a server tenant's ``compact_at`` over the provider's."""
    provider = choice.provider
    compact_at = provider.compact_at if runtime.compact_at is None else runtime.compact_at
    return CompactionSettings(
        window=context_window(provider, choice.model),
        compact_at=compact_at,
        reply_tokens=provider.max_tokens,
    )


async def compact_session(session: Session) -> Compacted | None:
    """Compact ``session``'s conversation now, whatever its size, and save it; the event to
    tell its faces, or ``None`` when nothing could be compacted. Run by the session's actor,
    never beside a turn."""
    runtime, choice = session.runtime, session.choice
    provider = await runtime.providers.get(choice.provider)
    outcome = await compact_conversation(
        session.conversation,
        provider=provider,
        model=choice.model,
        head=(Message.system(session.system_prompt()),),
        tools=session.tools.definitions(),
        meter=session.meter,
        settings=compaction_settings(runtime, choice),
        manual=True,
    )
    if outcome is None:
        return None
    price = choice.provider.prices.get(choice.model)
    cost = None if price is None else price.cost(outcome.usage)
    session.conversation.record_usage(outcome.usage, cost)
    await runtime.store.save(session.conversation)
    record = outcome.record
    return Compacted(record.tokens_before, record.tokens_after, record.method.value)
