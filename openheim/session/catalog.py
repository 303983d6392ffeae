"""What the faces read about a tenant's conversations without running one.

The REST app and the library list conversations and read transcripts here, never from the
store: a live session is read as it stands (its history may not be saved yet), anything else
comes from history. The registry is per tenant, so a catalog read never crosses tenants.
"""

from __future__ import annotations

import attrs

from openheim.foundation.models import Conversation, Message
from openheim.session.registry import SessionRegistry
from openheim.store.base import ConversationMeta

__all__ = ["ConversationMeta", "Page", "Transcript", "list_conversations", "page", "transcript"]


@attrs.frozen
class Page:
    """One page of a listing, newest first; ``more`` says a next page has something."""

    metas: tuple[ConversationMeta, ...]
    more: bool


@attrs.frozen
class Transcript:
    """A conversation at one moment: later turns of a live session do not change it."""

    meta: ConversationMeta
    messages: tuple[Message, ...]

    @classmethod
    def of(cls, conversation: Conversation) -> Transcript:
        # Synchronous on purpose: a live conversation cannot change between the two reads.
        return cls(ConversationMeta.of(conversation), tuple(conversation.messages))


async def list_conversations(
    registry: SessionRegistry, limit: int | None = None
) -> list[ConversationMeta]:
    """The tenant's stored conversations, newest first; raises ``HistoryError``."""
    return await registry.list(limit)


async def page(registry: SessionRegistry, *, limit: int, offset: int = 0) -> Page:
    """``limit`` conversations after the newest ``offset``; reads one more to know of a next."""
    metas = await registry.list(offset + limit + 1)
    return Page(tuple(metas[offset : offset + limit]), more=len(metas) > offset + limit)


async def transcript(registry: SessionRegistry, conversation_id: str) -> Transcript:
    """The live session's conversation, else the stored one; raises
    ``ConversationNotFoundError`` for an unknown id and ``HistoryError`` for an unreadable one."""
    live = registry.get(conversation_id)
    if live is not None:
        return Transcript.of(live.conversation)
    return Transcript.of(await registry.runtime.store.load(conversation_id))
