"""A session's events to everyone following it, in order, from the task that made them.

There is no task and no channel between a turn and its followers: ``FanOut.send`` calls each
follower's ``send`` in the turn's own task (an ACP connection's follower puts the update
straight on that connection's outbound queue). An event then costs one call per follower
instead of a hop through a fan-out task and a feed task, and a session nobody prompts holds
no task at all. A slow follower slows the turn, so memory stays bounded; one that is gone is
dropped; one that fails is logged and dropped, and the turn goes on for the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from openheim.agent.events import AgentEvent, EventSink

log = logging.getLogger(__name__)


class FanOut:
    """The followers of one session; ``send`` is the turn's ``EventSink``."""

    def __init__(self, observe: Callable[[AgentEvent], None]) -> None:
        #: Sees every event first (metrics), whoever follows.
        self._observe = observe
        self._followers: list[EventSink] = []
        self._channels: list[trio.MemorySendChannel[AgentEvent]] = []

    def follow(self, follower: EventSink) -> None:
        self._followers.append(follower)

    def unfollow(self, follower: EventSink) -> None:
        """Stop sending to ``follower`` (safe when it is already gone)."""
        if follower in self._followers:
            self._followers.remove(follower)
        if follower in self._channels:
            self._channels.remove(follower)  # type: ignore[arg-type]

    def subscribe(self, buffer: int) -> trio.MemoryReceiveChannel[AgentEvent]:
        """Events as a channel, for a face that reads them in a task of its own (the REPL,
        ``run``, the library client); close the receiving end to unsubscribe."""
        send, receive = trio.open_memory_channel[AgentEvent](buffer)
        self._channels.append(send)
        self.follow(send)
        return receive

    def __len__(self) -> int:
        return len(self._followers)

    async def send(self, event: AgentEvent) -> None:
        self._observe(event)
        followers = self._followers
        if len(followers) == 1:  # the common case: one client follows the session
            await self._send_to(followers[0], event)
            return
        for follower in list(followers):
            await self._send_to(follower, event)

    async def _send_to(self, follower: EventSink, event: AgentEvent) -> None:
        try:
            await follower.send(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.unfollow(follower)
        except Exception:  # a bug in one face must not end the turn for the others
            log.exception("a follower failed on %s; dropping it", type(event).__name__)
            self.unfollow(follower)

    def close(self) -> None:
        """The session has ended: channel readers see the end of their channel."""
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        self._followers.clear()
