"""A server's collector: startup frozen, full collections on a clock, garbage still freed."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap

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


async def test_full_collections_come_on_the_clock(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    collected: list[float] = []
    monkeypatch.setattr(heap.gc, "collect", lambda: collected.append(trio.current_time()) or 0)
    with trio.move_on_after(35):
        await heap.collect_on_a_clock(10)
    assert len(collected) == 3
    assert [round(b - a) for a, b in itertools.pairwise(collected)] == [10, 10]
