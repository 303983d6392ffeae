"""One rate limiter per provider key, shared by every session that uses the key.

Requests queue in arrival order (trio's semaphores and sleeps are FIFO-fair), so a thousand
sessions on one key take turns instead of all hitting 429 together. A ``Retry-After`` from any
response pauses the whole key: the other requests would only collect 429s of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


class RateLimiter:
    def __init__(
        self, *, max_in_flight: int | None = None, requests_per_minute: float | None = None
    ) -> None:
        self._slots = trio.Semaphore(max_in_flight) if max_in_flight else None
        self._interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next_start = 0.0
        self._paused_until = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot for the duration of a request (its whole stream)."""
        if self._slots is not None:
            await self._slots.acquire()
        try:
            await self._wait_for_turn()
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1
        finally:
            if self._slots is not None:
                self._slots.release()

    def pause(self, seconds: float) -> None:
        """Hold back every request on this key for ``seconds`` (a provider's Retry-After)."""
        self._paused_until = max(self._paused_until, trio.current_time() + max(seconds, 0.0))

    async def _wait_for_turn(self) -> None:
        while True:
            now = trio.current_time()
            if self._paused_until > now:
                await trio.sleep_until(self._paused_until)
                continue
            if self._interval:
                # Reserve a start time before sleeping: reservations are made in arrival order.
                start = max(now, self._next_start)
                self._next_start = start + self._interval
                await trio.sleep_until(start)
                if self._paused_until > trio.current_time():
                    continue  # a pause arrived while we waited for our start time
            return
