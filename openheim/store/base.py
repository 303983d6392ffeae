"""The storage protocol every history backend implements."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

import attrs

from openheim.foundation.models import Conversation, Message, Usage
from openheim.store.lease import Lease, Owner


@attrs.frozen
class ConversationMeta:
    """What a listing shows without loading messages: every ``Conversation`` field but those.

    The fields mirror ``Conversation``'s (names, types, order). ``of`` and ``with_messages``
    are the only places one is built from the other, and they go by ``META_FIELDS``, so no
    field is copied by hand; a test in ``tests/store`` fails when the two classes drift.
    """

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
        return cls(**{name: getattr(conversation, name) for name in META_FIELDS})

    def with_messages(self, messages: list[Message]) -> Conversation:
        """The conversation this meta heads, holding ``messages``."""
        return Conversation(**attrs.asdict(self, recurse=False), messages=messages)


#: The names ``ConversationMeta`` shares with ``Conversation``: all of its own.
META_FIELDS: tuple[str, ...] = tuple(field.name for field in attrs.fields(ConversationMeta))


class HistoryStore(Protocol):
    #: This process as a lease holder, shared by every tenant's view of the store.
    owner: Owner

    async def acquire(self, conversation_id: str) -> Lease:
        """Own the conversation (stored or not yet) until ``Lease.release``; a session saves
        through its lease. ``SessionActiveElsewhereError`` while another process owns it."""
        ...

    async def create(self, conversation: Conversation) -> Lease:
        """Own a new conversation and store its first version in one step (one round trip
        where the backend allows); ``HistoryError`` if its id is taken."""
        ...

    async def renew(self, leases: Collection[Lease], *, check: bool = False) -> None:
        """Keep this owner's leases alive (``lease.keep_leases`` calls it); fence the ones of
        ``leases`` another owner took."""
        ...

    async def save(self, conversation: Conversation) -> None:
        """Persist the whole conversation atomically: a reader sees the old or the new one.

        Unowned (no lease checked): for tools and tests; sessions save through their lease."""
        ...

    async def load(self, conversation_id: str) -> Conversation:
        """Raise ``HistoryError`` when the id is unknown, malformed or unreadable."""
        ...

    async def list(self, limit: int | None = None) -> list[ConversationMeta]:
        """Newest first (by ``updated_at``), metadata only."""
        ...

    async def delete(self, conversation_id: str) -> None:
        """Forget a conversation; ``ConversationNotFoundError`` when there is none."""
        ...

    def for_tenant(self, name: str) -> HistoryStore:
        """The same backend holding another tenant's conversations, apart from these."""
        ...
