"""A provider stream's consumer: a backlog of deltas comes out merged, nothing else changes."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from openheim.foundation.concurrency import Failed
from openheim.foundation.errors import ProviderError
from openheim.providers.base import (
    FinishReason,
    ProviderEvent,
    StreamEnd,
    TextDelta,
    ThinkingDelta,
)
from openheim.providers.client import ProviderStream

END = StreamEnd("abd", (), FinishReason.STOP, None)


async def drain(stream: ProviderStream) -> list[ProviderEvent]:
    return [event async for event in stream]


async def test_a_backlog_of_one_kind_of_delta_comes_out_as_one_event() -> None:
    send, receive = trio.open_memory_channel[ProviderEvent | Failed](16)
    for event in (
        ThinkingDelta("hm"),
        ThinkingDelta("m."),
        TextDelta("a"),
        TextDelta("b"),
        ThinkingDelta("c"),
        TextDelta("d"),
        END,
    ):
        send.send_nowait(event)
    send.close()
    assert await drain(ProviderStream(receive)) == [
        ThinkingDelta("hmm."),
        TextDelta("ab"),
        ThinkingDelta("c"),
        TextDelta("d"),
        END,
    ]


async def test_a_consumer_that_keeps_up_gets_every_piece() -> None:
    send, receive = trio.open_memory_channel[ProviderEvent | Failed](16)
    seen: list[ProviderEvent] = []

    async def consume() -> None:
        seen.extend(await drain(ProviderStream(receive)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        async with send:
            for text in "abc":
                await trio.testing.wait_all_tasks_blocked()  # the consumer waits: no backlog
                send.send_nowait(TextDelta(text))
    assert seen == [TextDelta("a"), TextDelta("b"), TextDelta("c")]


async def test_an_error_behind_a_backlog_is_raised_after_the_merged_text() -> None:
    send, receive = trio.open_memory_channel[ProviderEvent | Failed](16)
    send.send_nowait(TextDelta("par"))
    send.send_nowait(TextDelta("tial"))
    send.send_nowait(Failed(ProviderError("cut off", provider="fake")))
    send.close()
    stream = ProviderStream(receive)
    assert await stream.__anext__() == TextDelta("partial")
    with pytest.raises(ProviderError, match="cut off"):
        await stream.__anext__()
