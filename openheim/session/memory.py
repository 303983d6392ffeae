"""Memory admission: ``[server] max_rss_mb``, the server's resident-set budget.

Above the budget, whatever would grow memory (a new or reloaded session, a prompt) first
evicts idle sessions, oldest first, each saved before it is closed, and is refused with the
retryable ``ServerBusyError`` when that did not bring the process back under the budget.
Sessions no face holds go before held ones; a session with a request running or queued is
never evicted. An evicted session's conversation is stored: ``session/load`` brings it back.

The resident set is read from ``/proc/self/statm`` (one small read, no psutil) and kept for
``RSS_MAX_AGE`` seconds, so a burst of requests reads it once. Freed memory does not always
go back to the system at once (allocators keep it for reuse), so eviction works in doubling
batches, measuring after each, rather than all at once or one at a time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import trio

from openheim.foundation.errors import OpenheimError, ServerBusyError

if TYPE_CHECKING:
    from openheim.session.actor import Session

log = logging.getLogger(__name__)

#: Seconds a resident-set reading is reused.
RSS_MAX_AGE = 1.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_rss() -> int:
    """This process's resident set in bytes (0 where ``/proc`` is missing: never over)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class RssGauge:
    """The resident set, read at most once per ``max_age`` seconds unless asked ``fresh``."""

    def __init__(
        self,
        read: Callable[[], int] = read_rss,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = RSS_MAX_AGE,
    ) -> None:
        self._read, self._clock, self._max_age = read, clock, max_age
        self._value = 0
        self._at = -float("inf")

    def bytes(self, *, fresh: bool = False) -> int:
        now = self._clock()
        if fresh or now - self._at >= self._max_age:
            self._value, self._at = self._read(), now
        return self._value


class SessionPool(Protocol):
    """What eviction needs of a registry (``SessionRegistry`` is one)."""

    def sessions(self) -> list[Session]: ...

    def get(self, conversation_id: str) -> Session | None: ...

    def evict(self, session: Session) -> bool: ...


def eviction_order(sessions: Iterable[Session]) -> list[Session]:
    """Idle sessions, the ones no face holds first, each group oldest-idle first."""
    idle = [session for session in sessions if session.idle]
    idle.sort(key=lambda session: (session.attached, session.last_active))
    return idle


class MemoryBudget:
    """The server's one budget, shared by every tenant's registry (each ``watch``-es it)."""

    def __init__(self, limit_bytes: int, gauge: RssGauge | None = None) -> None:
        self.limit_bytes = limit_bytes
        self.gauge = gauge or RssGauge()
        self._pools: list[SessionPool] = []
        self._evicting = trio.Lock()
        #: Sessions closed to free memory, and requests refused as busy (for ``/metrics``).
        self.evictions = 0
        self.refusals = 0

    @classmethod
    def from_mb(cls, max_rss_mb: int | None) -> MemoryBudget | None:
        return None if max_rss_mb is None else cls(max_rss_mb * 1024 * 1024)

    def watch(self, pool: SessionPool) -> None:
        self._pools.append(pool)

    def unwatch(self, pool: SessionPool) -> None:
        if pool in self._pools:
            self._pools.remove(pool)

    def over(self, *, fresh: bool = False) -> bool:
        return self.gauge.bytes(fresh=fresh) > self.limit_bytes

    async def admit(self) -> None:
        """Return when under the budget, evicting idle sessions first if needed; else raise
        ``ServerBusyError``. One eviction runs at a time; the others wait and measure again."""
        if not self.over():
            return
        async with self._evicting:
            if self.over(fresh=True):
                await self._evict()
        if self.over():
            self.refusals += 1
            raise ServerBusyError()

    async def _evict(self) -> None:
        order = eviction_order(session for pool in self._pools for session in pool.sessions())
        start, batch = 0, 1
        while start < len(order) and self.over(fresh=True):
            for session in order[start : start + batch]:
                await self._evict_one(session)
            start, batch = start + batch, batch * 2

    async def _evict_one(self, session: Session) -> None:
        try:
            await session.save()
        except OpenheimError as error:  # kept: closing it would lose what is not stored
            log.warning("session %s: not evicted, the save failed: %s", session.id, error)
            return
        pool = next((pool for pool in self._pools if pool.get(session.id) is session), None)
        if pool is None or not pool.evict(session):
            return  # closed, or asked something, while it was being saved
        self.evictions += 1
        idle_for = trio.current_time() - session.last_active
        log.info(
            "session %s evicted (idle %.0f s): the resident set is over max_rss_mb (%d MiB)",
            session.id,
            idle_for,
            self.limit_bytes // (1024 * 1024),
        )
        await session.ended.wait()
