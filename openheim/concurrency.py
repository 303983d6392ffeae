"""Small trio helpers shared by the actors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


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
