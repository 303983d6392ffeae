"""The storage protocol every history backend implements."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs

from openheim.models import Conversation, Usage


@attrs.frozen
class ConversationMeta:
    """What a listing shows without loading messages."""

    id: str
    created_at: datetime
    updated_at: datetime
    model: str | None = None
    provider: str | None = None
    title: str | None = None
    skills: tuple[str, ...] = ()
    cwd: str | None = None
    usage: Usage = attrs.field(factory=Usage)
    cost_usd: float | None = None

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationMeta:
        return cls(
            id=conversation.id,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            model=conversation.model,
            provider=conversation.provider,
            title=conversation.title,
            skills=conversation.skills,
            cwd=conversation.cwd,
            usage=conversation.usage,
            cost_usd=conversation.cost_usd,
        )


class HistoryStore(Protocol):
    async def save(self, conversation: Conversation) -> None:
        """Persist the whole conversation atomically: a reader sees the old or the new one."""
        ...

    async def load(self, conversation_id: str) -> Conversation:
        """Raise ``HistoryError`` when the id is unknown, malformed or unreadable."""
        ...

    async def list(self, limit: int | None = None) -> list[ConversationMeta]:
        """Newest first (by ``updated_at``), metadata only."""
        ...

    def for_tenant(self, name: str) -> HistoryStore:
        """The same backend holding another tenant's conversations, apart from these."""
        ...
