"""A connection's outbound messages: bounded, one writer, text chunks merged in a backlog.

Every transport (stdio, WebSocket, HTTP streams) has one task that writes and many that
queue. The writer takes everything waiting at once and writes it in one go, so a socket that
falls behind gets fewer, larger writes. While messages wait, a text chunk joins the one queued
just before it when both are the same session's same kind of text (``merge_chunks``): a client
slower than the model gets fewer, longer updates instead of falling ever further behind, and
the model is never held up by text alone. Nothing is merged unless it is already waiting, so a
client that keeps up gets every chunk as it came.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import trio

from openheim.acp import blocks
from openheim.acp.codec import Notification

T = TypeVar("T")

#: A merged chunk stops growing at this many characters: merging copies the text, so an
#: unbounded one would cost quadratic time behind a stalled socket.
MERGED_TEXT_LIMIT = 16 * 1024
_TEXT_UPDATES = frozenset({"agent_message_chunk", "agent_thought_chunk"})


def merge_chunks(first: object, second: object) -> Notification | None:
    """Two text chunks of one session and one kind as one update; None for anything else
    (updates with ``_meta``, images, other kinds, or a text past ``MERGED_TEXT_LIMIT``)."""
    if not (isinstance(first, Notification) and isinstance(second, Notification)):
        return None
    if first.method != "session/update" or second.method != "session/update":
        return None
    text = _chunk_text(first.params)
    more = _chunk_text(second.params)
    if text is None or more is None:
        return None
    kind = first.params["update"]["sessionUpdate"]
    if second.params["update"]["sessionUpdate"] != kind:
        return None
    if first.params["sessionId"] != second.params["sessionId"]:
        return None
    if len(text) + len(more) > MERGED_TEXT_LIMIT:
        return None
    update = {"sessionUpdate": kind, "content": blocks.text_block(text + more)}
    return Notification("session/update", blocks.session_update(first.params["sessionId"], update))


def _chunk_text(params: Any) -> str | None:
    """The text of a plain text-chunk update's params, else None."""
    if not isinstance(params, dict) or len(params) != 2:
        return None
    update = params.get("update")
    if not isinstance(update, dict) or len(update) != 2:
        return None
    if update.get("sessionUpdate") not in _TEXT_UPDATES:
        return None
    content = update.get("content")
    if not isinstance(content, dict) or len(content) != 2 or content.get("type") != "text":
        return None
    text = content.get("text")
    return text if isinstance(text, str) else None


def _never(first: object, second: object) -> None:
    return None


class Outbox(Generic[T]):
    """A bounded queue with one reader, which takes all that waits at once.

    ``put_nowait`` merges an item into the last one waiting when ``merge`` says they are one;
    a merged item takes no new place, so a backlog of text never fills the queue by itself.
    ``close`` ends it for both sides: later puts raise ``ClosedResourceError``, and ``take``
    returns what is left, then raises ``EndOfChannel``.
    """

    def __init__(self, capacity: int, merge: Callable[[T, T], T | None] = _never) -> None:
        self.capacity = capacity
        self._merge = merge
        self._items: collections.deque[T] = collections.deque()
        self._closed = False
        self._readable = trio.lowlevel.ParkingLot()
        self._writable = trio.lowlevel.ParkingLot()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put_nowait(self, item: T) -> None:
        """Queue (or merge) ``item``; ``trio.WouldBlock`` when full."""
        if self._closed:
            raise trio.ClosedResourceError("the outbox is closed")
        items = self._items
        if items:
            merged = self._merge(items[-1], item)
            if merged is not None:
                items[-1] = merged
                return
            if len(items) >= self.capacity:
                raise trio.WouldBlock
        items.append(item)
        if self._readable:
            self._readable.unpark_all()

    async def put(self, item: T) -> None:
        """Queue ``item``, waiting while the queue is full."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                self.put_nowait(item)
            except trio.WouldBlock:
                await self._writable.park()
                continue
            break
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def take(self) -> list[T]:
        """Everything waiting, at least one item. Not a schedule point when items wait (the
        writer's write that follows is one); ``EndOfChannel`` once closed and empty."""
        while not self._items:
            if self._closed:
                raise trio.EndOfChannel
            await self._readable.park()
        items = list(self._items)
        self._items.clear()
        if self._writable:
            self._writable.unpark_all()
        return items

    def close(self) -> None:
        self._closed = True
        self._readable.unpark_all()
        self._writable.unpark_all()
