"""One owner per live conversation, across processes and replicas sharing a store.

A process that runs a session holds its conversation's ``Lease``: PostgreSQL keeps a lease row
with an expiry that the owner renews; the file store holds an fcntl lock for the session's
life. Every save through the lease checks the stored version and the lease together, so an
owner that was fenced out (its lease ran out and another replica took the session) fails
loudly instead of overwriting the newer conversation.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
from collections.abc import Callable, Collection
from typing import Protocol

import attrs
import trio

from openheim.foundation.errors import HistoryError
from openheim.foundation.models import Conversation

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECS = 30.0


@attrs.frozen
class Owner:
    """This process as a holder of leases: an id unique to it, and how long its leases last.

    The id starts with a readable name (``[server] replica_name``, else host and pid) for the
    logs; the random tail keeps a restarted process from passing for the one it replaces.
    """

    id: str
    lease_secs: float = DEFAULT_LEASE_SECS

    @classmethod
    def new(cls, name: str | None = None, lease_secs: float = DEFAULT_LEASE_SECS) -> Owner:
        label = name or f"{socket.gethostname()}:{os.getpid()}"
        return cls(f"{label}/{secrets.token_hex(4)}", lease_secs)

    @property
    def renew_every(self) -> float:
        """A third of the lease: two renewals may fail before another replica may take over."""
        return self.lease_secs / 3


class SessionActiveElsewhereError(HistoryError):
    """Another process holds the conversation's lease; ``retry_after`` is when it runs out
    (None: a file lock, held until that process closes the session)."""

    def __init__(
        self, conversation_id: str, retry_after: float | None, holder: str | None = None
    ) -> None:
        if retry_after is None:
            public = (
                f"session {conversation_id} is active in another openheim process; "
                "retry once that process has closed it"
            )
        else:
            seconds = max(1, math.ceil(retry_after))
            public = f"session {conversation_id} is active on another server; retry in {seconds} s"
        message = public if holder is None else f"{public} (held by {holder})"
        super().__init__(message, public=public)
        self.conversation_id = conversation_id
        self.retry_after = None if retry_after is None else max(1, math.ceil(retry_after))


class OwnershipLostError(HistoryError):
    """This process no longer owns the conversation: a newer owner may have saved it since."""

    def __init__(self, conversation_id: str, why: str) -> None:
        super().__init__(
            f"session {conversation_id} is no longer owned by this server ({why}); "
            "fix: load it again"
        )
        self.conversation_id = conversation_id


@attrs.define(eq=False)
class LeaseState:
    """What every backend's lease tracks: the version it last saw, and whether it is lost."""

    conversation_id: str
    owner: Owner
    #: The stored version this owner last read or wrote; 0 for a conversation never stored.
    version: int = 0
    #: Called once, with the reason, when ownership is found lost (the session's registry
    #: drops the session).
    on_lost: Callable[[str], None] | None = None
    lost: bool = False
    reason: str = ""
    released: bool = False

    def fence(self, why: str) -> OwnershipLostError:
        """Mark the lease lost (telling ``on_lost`` the first time); returns the error to raise."""
        if not self.lost:
            self.lost, self.reason = True, why
            if self.on_lost is not None and not self.released:
                self.on_lost(why)
        return OwnershipLostError(self.conversation_id, self.reason)


class Lease(Protocol):
    """This process's ownership of one conversation, from ``HistoryStore.acquire`` on."""

    state: LeaseState

    async def load(self) -> Conversation:
        """The stored conversation (read after the lease was taken), noting its version."""
        ...

    async def save(self, conversation: Conversation) -> None:
        """Store it if this owner still holds the lease and nobody saved since; else
        ``OwnershipLostError`` (and the lease is lost)."""
        ...

    async def release(self) -> None:
        """Let another process take the conversation; safe after a loss."""
        ...


class Renewer(Protocol):
    """The part of a store that keeps its leases alive."""

    owner: Owner

    async def renew(self, leases: Collection[Lease], *, check: bool = False) -> None:
        """Keep every lease of this owner alive in one go. When some may have run out meanwhile
        (or ``check``), fence those of ``leases`` that another owner holds now. A store whose
        leases need no renewal does nothing."""
        ...


async def keep_leases(store: Renewer, held: Callable[[], Collection[Lease]]) -> None:
    """Renew the leases every third of a lease period, forever; ``held()`` is looked at, not
    copied, so a tick costs the same with ten sessions or 100,000. A renewal that fails (the
    database is away) is retried; once the leases may have run out, every one of them is lost,
    and the next renewal that works also looks for leases taken meanwhile."""
    owner = store.owner
    renewed = trio.current_time()
    while True:
        await trio.sleep(owner.renew_every)
        started = trio.current_time()
        leases = held()
        if not leases:  # nothing to lose; a lease taken from now on holds a period by itself
            renewed = started
            continue
        overdue = started - renewed >= owner.lease_secs
        try:
            await store.renew(leases, check=overdue)
        except HistoryError as error:
            log.warning("could not renew %d session leases: %s", len(leases), error)
            if trio.current_time() - renewed >= owner.lease_secs:
                for lease in list(leases):
                    lease.state.fence(f"its lease could not be renewed: {error.public}")
            continue
        renewed = started
