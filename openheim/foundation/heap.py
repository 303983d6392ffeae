"""The cyclic garbage collector, tuned for a long-running server.

CPython's collector stops every task while it runs. Measured on ``serve`` relaying 100 streams
(bench/throughput.py), its full collections took 60-100 ms each, several times a minute, and
they were the p99 of the latency ``serve`` adds: a full collection walks every container
object, and most of them (about 140,000: functions, classes, modules, config) come from
startup and live as long as the process.

So a server, once up, collects what startup left and moves the survivors out of the
collector's sight (``gc.freeze``); young collections stay automatic, with thresholds that keep
each one to a few milliseconds; and old objects are collected on a clock
(``collect_on_a_clock``) instead of whenever allocation counts say. Each tick collects what is
not frozen, then freezes the survivors, so a tick walks only what the last
``OLD_COLLECTION_EVERY`` seconds left alive, not every live session. A tick comes sooner when
``OLD_OBJECTS_BUDGET`` objects wait for it: while sessions were created at 1,000 a second, 30 s
of them made a tick of about 0.7 s; the budget keeps each to tens of milliseconds.

Frozen objects still die by reference counting; only cycles among them wait for a sweep, which
unfreezes and collects everything once. A sweep walks every live object, so it comes only
when the frozen heap has grown by ``SWEEP_GROWTH`` since the last one (CPython's own rule for
its full collections, so sweeps cost in proportion to growth), and at most once per
``SWEEP_EVERY`` seconds. A server whose heap stays put never stops for one.
"""

from __future__ import annotations

import gc
import logging
import time

import trio

log = logging.getLogger(__name__)

#: Allocations between young collections (CPython: 700), and young collections per middle
#: one (CPython: 10): each collection then walks at most about 25,000 objects.
YOUNG_THRESHOLD = 5_000
MIDDLE_THRESHOLD = 5
#: Middle collections per automatic full one: never, in practice; the clock does them.
NO_AUTOMATIC_FULL = 1 << 30
OLD_COLLECTION_EVERY = 30.0
SWEEP_EVERY = 600.0
SWEEP_GROWTH = 0.25
#: Old objects (promoted, not yet frozen) that bring the next tick forward.
OLD_OBJECTS_BUDGET = 50_000
#: How often the clock looks at that count.
LOOK_EVERY = 1.0


def settle_heap() -> None:
    """Call once, when startup is over and the process begins serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, NO_AUTOMATIC_FULL)


async def collect_on_a_clock(
    every: float = OLD_COLLECTION_EVERY,
    sweep_every: float = SWEEP_EVERY,
    growth: float = SWEEP_GROWTH,
    budget: int = OLD_OBJECTS_BUDGET,
    look_every: float = LOOK_EVERY,
) -> None:
    """Collect the unfrozen objects every ``every`` seconds, or once ``budget`` old objects
    wait, and freeze what survives; collect all of them once the frozen heap has grown by
    ``growth`` since the last time, at most every ``sweep_every`` seconds. For as long as the
    server runs."""
    ticked = swept = trio.current_time()
    swept_size = gc.get_freeze_count()
    while True:
        await trio.sleep(look_every)
        now = trio.current_time()
        if now - ticked < every and not old_objects_over(budget):
            continue
        ticked = now
        sweep = sweep_due(gc.get_freeze_count(), swept_size, now - swept, sweep_every, growth)
        if sweep:
            gc.unfreeze()
        started = time.perf_counter()
        found = gc.collect()
        gc.freeze()
        if sweep:
            swept, swept_size = trio.current_time(), gc.get_freeze_count()
        what = "sweep" if sweep else "old-object collection"
        log.debug("%s: %d objects freed in %.1f ms", what, found, _ms_since(started))


def old_objects_over(budget: int) -> bool:
    """Whether the oldest generation (what is neither young nor frozen) holds ``budget``
    objects. Counted only after a middle collection has promoted some since the last tick."""
    if gc.get_count()[2] == 0:
        return False
    return len(gc.get_objects(generation=2)) >= budget


def sweep_due(
    frozen: int, swept_size: int, since_sweep: float, sweep_every: float, growth: float
) -> bool:
    """Whether to sweep: the frozen heap has grown by ``growth`` since the last sweep left
    ``swept_size`` objects, and ``sweep_every`` seconds have passed."""
    return since_sweep >= sweep_every and frozen > swept_size * (1 + growth)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
