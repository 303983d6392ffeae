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


async def test_old_objects_are_collected_on_the_clock_and_swept_whole_less_often(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    calls: list[tuple[str, float]] = []

    def record(name: str) -> Callable[[], int]:
        def call() -> int:
            calls.append((name, trio.current_time()))
            return 0

        return call

    for name in ("collect", "freeze", "unfreeze"):
        monkeypatch.setattr(heap.gc, name, record(name))
    with trio.move_on_after(65):
        await heap.collect_on_a_clock(10, sweep_every=30)
    names = [name for name, _ in calls]
    # Every tick collects, then freezes the survivors; every third one unfreezes first.
    assert names == ["collect", "freeze"] * 2 + ["unfreeze", "collect", "freeze"] + [
        "collect",
        "freeze",
    ] * 2 + ["unfreeze", "collect", "freeze"]
    ticks = [at for name, at in calls if name == "collect"]
    assert [round(b - a) for a, b in itertools.pairwise(ticks)] == [10] * 5
