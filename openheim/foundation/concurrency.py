"""Small trio helpers shared by the actors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

import attrs
import trio

T = TypeVar("T")


@asynccontextmanager
async def open_service_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery for background tasks that serve the ``async with`` body.

    When the body raises, the background tasks are cancelled and the body's exception comes
    out as itself, not wrapped in an ``ExceptionGroup``, so callers catch ``ConfigError`` or
    ``ProviderError`` as they would from a plain call. When the body ends, the tasks are
    cancelled too: they exist only to serve it.
    """
    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        try:
            yield nursery
        except Exception as exc:
            failure = exc
        finally:
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure


@attrs.frozen
class Failed:
    """Sent down a result channel in place of an item: the producer failed with ``error``."""

    error: Exception


class ResultStream(Generic[T]):
    """Iterates a channel of items and ``Failed`` markers, raising the producer's error where
    it happened. Producers in another task report failures this way instead of crashing
    the consumer's nursery with an ``ExceptionGroup``."""

    def __init__(self, receive: trio.MemoryReceiveChannel[T | Failed]) -> None:
        self._receive = receive

    def __aiter__(self) -> ResultStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            item = await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        return self.unwrap(item)

    @staticmethod
    def unwrap(item: T | Failed) -> T:
        """The item, or the producer's error raised."""
        if isinstance(item, Failed):
            raise item.error
        return item
