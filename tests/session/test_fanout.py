"""A session's followers: every event, in order, from the sender's task; a follower that is
gone or broken is dropped and the others go on."""

from __future__ import annotations

import pytest
import trio

from openheim.agent.events import AgentEvent, MessageChunk, ThoughtChunk
from openheim.session.fanout import FanOut


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.seen: list[AgentEvent] = []
        self.fail_on = fail_on

    async def send(self, event: AgentEvent) -> None:
        if isinstance(event, MessageChunk) and event.text == self.fail_on:
            raise KeyError("a bug in this face")
        self.seen.append(event)


async def test_every_follower_gets_every_event_in_order_and_the_observer_first() -> None:
    observed: list[AgentEvent] = []
    fanout = FanOut(observed.append)
    first, second = Recorder(), Recorder()
    fanout.follow(first)
    fanout.follow(second)
    events = [MessageChunk("a"), ThoughtChunk("b"), MessageChunk("c")]
    for event in events:
        await fanout.send(event)
    assert first.seen == second.seen == observed == events


async def test_a_failing_follower_is_dropped_and_the_rest_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fanout = FanOut(lambda event: None)
    broken, healthy = Recorder(fail_on="boom"), Recorder()
    fanout.follow(broken)
    fanout.follow(healthy)
    for text in ("ok", "boom", "after"):
        await fanout.send(MessageChunk(text))
    assert [e.text for e in healthy.seen if isinstance(e, MessageChunk)] == ["ok", "boom", "after"]
    assert [e.text for e in broken.seen if isinstance(e, MessageChunk)] == ["ok"]
    assert len(fanout) == 1
    assert "a follower failed on MessageChunk" in caplog.text


async def test_a_channel_subscriber_that_closed_is_dropped_and_close_ends_the_others() -> None:
    fanout = FanOut(lambda event: None)
    gone = fanout.subscribe(4)
    staying = fanout.subscribe(4)
    gone.close()
    await fanout.send(MessageChunk("x"))
    assert len(fanout) == 1
    fanout.close()
    assert [event async for event in staying] == [MessageChunk("x")]


async def test_unfollow_stops_the_events() -> None:
    fanout = FanOut(lambda event: None)
    follower = Recorder()
    fanout.follow(follower)
    await fanout.send(MessageChunk("one"))
    fanout.unfollow(follower)
    fanout.unfollow(follower)  # twice is fine
    await fanout.send(MessageChunk("two"))
    assert follower.seen == [MessageChunk("one")]


async def test_a_slow_follower_holds_the_sender_back() -> None:
    fanout = FanOut(lambda event: None)
    channel = fanout.subscribe(1)
    await fanout.send(MessageChunk("fits"))
    with trio.move_on_after(0.05) as waited:
        await fanout.send(MessageChunk("waits"))
    assert waited.cancelled_caught  # backpressure, not a growing buffer
    assert channel.receive_nowait() == MessageChunk("fits")
