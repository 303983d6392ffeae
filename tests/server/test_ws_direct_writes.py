"""A connection's session updates go to the socket from the turn's own task when nothing
waits, and through the writer otherwise, always in the order they were sent."""

from __future__ import annotations

import json
from typing import Any

import trio

from openheim.acp.codec import Notification, Response
from openheim.acp.settings import AcpSettings
from openheim.config.model import DisconnectPolicy
from openheim.server.ws import Connection, ConnectionSettings


class RecordingSocket:
    """Records each write with the task that made it. Writes wait while ``hold`` is unset,
    one at a time, as the server's send lock has them."""

    batches = True

    def __init__(self) -> None:
        self.writes: list[tuple[str, list[str]]] = []
        self.hold = trio.Event()
        self.hold.set()
        self._lock = trio.Lock()

    async def send_texts(self, texts: list[str]) -> None:
        async with self._lock:
            self.writes.append((trio.lowlevel.current_task().name, texts))
            await self.hold.wait()


def update(text: str) -> Notification:
    chunk = {"sessionUpdate": "tool_call_update", "toolCallId": text, "status": "pending"}
    return Notification("session/update", {"sessionId": "s", "update": chunk})


def connection(socket: RecordingSocket) -> Connection:
    settings = ConnectionSettings(AcpSettings(), 5.0, DisconnectPolicy.KEEP)
    return Connection(socket, None, settings, multiplexed=False)  # type: ignore[arg-type]


def sent(socket: RecordingSocket) -> list[Any]:
    return [json.loads(text) for _, texts in socket.writes for text in texts]


async def turn(connection: Connection, items: list[Any]) -> None:
    for item in items:
        await connection._enqueue(item)


async def test_an_update_with_nothing_waiting_is_written_by_the_sending_task() -> None:
    socket = RecordingSocket()
    ws = connection(socket)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ws._write, trio.Event(), name="writer")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(turn, ws, [update("a"), update("b")], name="turn")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(turn, ws, [Response(1, {})], name="reader")
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    # The updates go straight from the turn; a reply always goes through the writer.
    assert [task for task, _ in socket.writes] == ["turn", "turn", "writer"]
    assert [m.get("id") or m["params"]["update"]["toolCallId"] for m in sent(socket)] == [
        "a",
        "b",
        1,
    ]


async def test_while_a_write_is_under_way_the_rest_queue_in_order() -> None:
    socket = RecordingSocket()
    socket.hold = trio.Event()  # the first write does not finish until released
    ws = connection(socket)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ws._write, trio.Event(), name="writer")
        nursery.start_soon(turn, ws, [update("a")], name="turn-1")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(turn, ws, [update("b"), Response(7, {}), update("c")], name="turn-2")
        await trio.testing.wait_all_tasks_blocked()
        assert len(socket.writes) == 1  # "a" is under way; the rest wait for it
        socket.hold.set()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    order = [m.get("id") or m["params"]["update"]["toolCallId"] for m in sent(socket)]
    assert order == ["a", "b", 7, "c"]
    assert [task for task, _ in socket.writes] == ["turn-1", "writer"]  # b, 7, c in one write
