"""A server's collector: startup frozen, full collections on a clock, garbage still freed."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest
import trio
import trio.testing

from openheim.foundation import heap


def test_settle_heap_freezes_startup_and_leaves_full_collections_to_the_clock() -> None:
    # In a process of its own: freezing the test runner's heap would outlive this test.
    code = textwrap.dedent(
        """
        import gc, json, weakref
        from openheim.foundation.heap import settle_heap

        settle_heap()
        frozen = gc.get_freeze_count()

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        alive = weakref.ref(a)
        del a, b
        gc.collect()
        print(json.dumps({"frozen": frozen, "threshold": gc.get_threshold(),
                          "cycle_freed": alive() is None}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    report = json.loads(out)
    assert report["frozen"] > 1000  # the imports, at least
    assert report["threshold"] == [
        heap.YOUNG_THRESHOLD,
        heap.MIDDLE_THRESHOLD,
        heap.NO_AUTOMATIC_FULL,
    ]
    assert report["cycle_freed"]


async def test_old_objects_are_collected_on_the_clock_and_swept_whole_after_growth(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    calls: list[tuple[str, float]] = []
    frozen = iter([1000, 1100, 1300, 1300, 1300, 1400, 1500, 2000, 2000, 2000, 2000, 2000])

    def record(name: str) -> Callable[[], int]:
        def call() -> int:
            calls.append((name, trio.current_time()))
            return 0

        return call

    for name in ("collect", "freeze", "unfreeze"):
        monkeypatch.setattr(heap.gc, name, record(name))
    monkeypatch.setattr(heap.gc, "get_freeze_count", lambda: next(frozen))
    monkeypatch.setattr(heap.gc, "get_count", lambda: (0, 0, 0))  # nothing promoted
    with trio.move_on_after(65):
        await heap.collect_on_a_clock(10, sweep_every=30, growth=0.25)
    names = [name for name, _ in calls]
    # Every tick collects, then freezes the survivors. The heap had grown by a quarter at
    # 20 s (1,300 > 1,250), but a sweep waits until 30 s. The sweep left 1,300 objects; at 40
    # and 50 s the heap has not grown by a quarter since, at 60 s it has (2,000 > 1,625).
    tick = ["collect", "freeze"]
    sweep = ["unfreeze", "collect", "freeze"]
    assert names == tick * 2 + sweep + tick * 2 + sweep
    ticks = [at for name, at in calls if name == "collect"]
    assert [round(b - a) for a, b in itertools.pairwise(ticks)] == [10] * 5


def test_a_heap_that_stays_put_is_never_swept() -> None:
    assert not heap.sweep_due(1_250, 1_000, since_sweep=10_000, sweep_every=600, growth=0.25)
    assert heap.sweep_due(1_251, 1_000, since_sweep=600, sweep_every=600, growth=0.25)
    assert not heap.sweep_due(5_000, 1_000, since_sweep=599, sweep_every=600, growth=0.25)


async def test_a_tick_comes_early_once_enough_old_objects_wait(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    ticks: list[float] = []
    waiting = {"old": 0}

    def collect() -> int:
        ticks.append(trio.current_time())
        waiting["old"] = 0
        return 0

    def old_objects(generation: int) -> list[object]:
        assert generation == 2
        return [None] * waiting["old"]

    async def promote() -> None:  # 20,000 old objects a second, as when sessions pour in
        await trio.sleep(0.5)  # between the clock's looks, so no two wake at the same time
        while True:
            waiting["old"] += 20_000
            await trio.sleep(1)

    monkeypatch.setattr(heap.gc, "collect", collect)
    monkeypatch.setattr(heap.gc, "freeze", lambda: None)
    monkeypatch.setattr(heap.gc, "get_freeze_count", lambda: 0)
    monkeypatch.setattr(heap.gc, "get_count", lambda: (0, 0, 1 if waiting["old"] else 0))
    monkeypatch.setattr(heap.gc, "get_objects", old_objects)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(promote)
        with trio.move_on_after(10.5):
            await heap.collect_on_a_clock(30, budget=50_000, look_every=1)
        nursery.cancel_scope.cancel()
    # 60,000 wait at each third look: a tick every third second, not every thirtieth.
    assert ticks == [3, 6, 9]
