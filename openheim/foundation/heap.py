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
``OLD_COLLECTION_EVERY`` seconds left alive, not every live session. Frozen objects still die
by reference counting; only cycles among them wait for a sweep, which unfreezes and collects
everything once. A sweep walks the whole heap (about 2 s with 100,000 idle sessions on the
bench machine), so it comes only when the frozen heap has grown by ``SWEEP_GROWTH`` since the
last one (CPython's own rule for its full collections, so sweeps cost in proportion to
growth), and at most once per ``SWEEP_EVERY`` seconds. A server whose heap stays put never
stops for one.
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


def settle_heap() -> None:
    """Call once, when startup is over and the process begins serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, NO_AUTOMATIC_FULL)


async def collect_on_a_clock(
    every: float = OLD_COLLECTION_EVERY,
    sweep_every: float = SWEEP_EVERY,
    growth: float = SWEEP_GROWTH,
) -> None:
    """Collect the unfrozen objects every ``every`` seconds and freeze what survives; collect
    all of them once the frozen heap has grown by ``growth`` since the last time, at most
    every ``sweep_every`` seconds. For as long as the server runs."""
    swept, swept_size = trio.current_time(), gc.get_freeze_count()
    while True:
        await trio.sleep(every)
        sweep = sweep_due(
            gc.get_freeze_count(), swept_size, trio.current_time() - swept, sweep_every, growth
        )
        if sweep:
            gc.unfreeze()
        started = time.perf_counter()
        found = gc.collect()
        gc.freeze()
        if sweep:
            swept, swept_size = trio.current_time(), gc.get_freeze_count()
        what = "sweep" if sweep else "old-object collection"
        log.debug("%s: %d objects freed in %.1f ms", what, found, _ms_since(started))


def sweep_due(
    frozen: int, swept_size: int, since_sweep: float, sweep_every: float, growth: float
) -> bool:
    """Whether to sweep: the frozen heap has grown by ``growth`` since the last sweep left
    ``swept_size`` objects, and ``sweep_every`` seconds have passed."""
    return since_sweep >= sweep_every and frozen > swept_size * (1 + growth)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
