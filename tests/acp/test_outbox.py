"""The transports' outbound queue: bounded, taken whole, text chunks merged only in a backlog."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from openheim.acp import blocks
from openheim.acp.codec import Notification, Request, Response
from openheim.acp.outbox import MERGED_TEXT_LIMIT, Outbox, merge_chunks


def chunk(text: str, session: str = "s1", kind: str = "agent_message_chunk") -> Notification:
    update = {"sessionUpdate": kind, "content": blocks.text_block(text)}
    return Notification("session/update", blocks.session_update(session, update))


def text_of(message: object) -> str:
    assert isinstance(message, Notification)
    return str(message.params["update"]["content"]["text"])


def test_two_chunks_of_one_session_and_kind_merge() -> None:
    merged = merge_chunks(chunk("Hel"), chunk("lo"))
    assert merged == chunk("Hello")
    thought = merge_chunks(
        chunk("a", kind="agent_thought_chunk"), chunk("b", kind="agent_thought_chunk")
    )
    assert thought == chunk("ab", kind="agent_thought_chunk")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (chunk("a"), chunk("b", session="s2")),
        (chunk("a"), chunk("b", kind="agent_thought_chunk")),
        (chunk("a"), Response(1, {})),
        (Request(1, "session/request_permission", {}), chunk("b")),
        (chunk("a"), Notification("session/update", {"sessionId": "s1", "update": {}})),
        # A chunk with _meta (a compaction note) or an image is never merged away.
        (
            chunk("a"),
            Notification(
                "session/update",
                {
                    "sessionId": "s1",
                    "update": {
                        "sessionUpdate": "agent_message_chunk",
                        "content": {"type": "text", "text": "b"},
                        "_meta": {"openheim.dev": {}},
                    },
                },
            ),
        ),
        (
            chunk("a"),
            Notification(
                "session/update",
                blocks.session_update(
                    "s1",
                    {
                        "sessionUpdate": "agent_message_chunk",
                        "content": {"type": "image", "data": "", "mimeType": "image/png"},
                    },
                ),
            ),
        ),
        (chunk("x" * MERGED_TEXT_LIMIT), chunk("y")),
    ],
)
def test_anything_else_stays_apart(first: object, second: object) -> None:
    assert merge_chunks(first, second) is None


async def test_take_returns_everything_waiting_in_order() -> None:
    outbox: Outbox[int] = Outbox(8)
    for item in range(5):
        outbox.put_nowait(item)
    assert len(outbox) == 5
    assert await outbox.take() == [0, 1, 2, 3, 4]
    assert len(outbox) == 0


async def test_a_backlog_of_text_merges_and_never_fills_the_queue() -> None:
    outbox = Outbox(2, merge_chunks)
    outbox.put_nowait(Response(1, {}))
    for piece in "streamed":
        outbox.put_nowait(chunk(piece))  # one place for all of them
    with pytest.raises(trio.WouldBlock):
        outbox.put_nowait(Response(2, {}))
    taken = await outbox.take()
    assert taken[0] == Response(1, {})
    assert [text_of(item) for item in taken[1:]] == ["streamed"]


async def test_a_full_queue_makes_put_wait_until_the_writer_takes() -> None:
    outbox: Outbox[int] = Outbox(1)
    outbox.put_nowait(1)
    done = trio.Event()

    async def put_second() -> None:
        await outbox.put(2)
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(put_second)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        assert await outbox.take() == [1]
        await done.wait()
        assert await outbox.take() == [2]


async def test_take_waits_for_an_item() -> None:
    outbox: Outbox[str] = Outbox(4)
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.testing.wait_all_tasks_blocked()
            outbox.put_nowait("late")

        nursery.start_soon(later)
        assert await outbox.take() == ["late"]


async def test_close_drains_then_ends_and_refuses_puts() -> None:
    outbox: Outbox[int] = Outbox(1)
    outbox.put_nowait(1)
    waiting: list[type[BaseException]] = []

    async def blocked_put() -> None:
        try:
            await outbox.put(2)
        except trio.ClosedResourceError as exc:
            waiting.append(type(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_put)
        await trio.testing.wait_all_tasks_blocked()
        outbox.close()
    assert waiting == [trio.ClosedResourceError]  # a sender waiting on a dead writer is freed
    with pytest.raises(trio.ClosedResourceError):
        outbox.put_nowait(3)
    assert await outbox.take() == [1]
    with pytest.raises(trio.EndOfChannel):
        await outbox.take()


async def test_a_cancelled_put_queues_nothing() -> None:
    outbox: Outbox[int] = Outbox(1)
    outbox.put_nowait(1)
    with trio.move_on_after(0.01):
        await outbox.put(2)
    assert await outbox.take() == [1]
    assert len(outbox) == 0
