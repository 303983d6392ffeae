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
by reference counting; only cycles among them wait, for the sweep every ``SWEEP_EVERY``
seconds, which unfreezes and collects everything once.
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


def settle_heap() -> None:
    """Call once, when startup is over and the process begins serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, NO_AUTOMATIC_FULL)


async def collect_on_a_clock(
    every: float = OLD_COLLECTION_EVERY, sweep_every: float = SWEEP_EVERY
) -> None:
    """Collect the unfrozen objects every ``every`` seconds and freeze what survives; every
    ``sweep_every`` seconds, collect all of them. For as long as the server runs."""
    swept = trio.current_time()
    while True:
        await trio.sleep(every)
        sweep = trio.current_time() - swept >= sweep_every
        if sweep:
            gc.unfreeze()
            swept = trio.current_time()
        started = time.perf_counter()
        found = gc.collect()
        gc.freeze()
        what = "sweep" if sweep else "old-object collection"
        log.debug("%s: %d objects freed in %.1f ms", what, found, _ms_since(started))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
