"""The cyclic garbage collector, tuned for a long-running server.

CPython's collector stops every task while it runs. Measured on ``serve`` relaying 100 streams
(bench/throughput.py), its full collections took 60-100 ms each, several times a minute, and
they were the p99 of the latency ``serve`` adds: a full collection walks every container
object, and most of them (about 140,000: functions, classes, modules, config) come from
startup and live as long as the process.

So a server, once up, collects what startup left and moves the survivors out of the
collector's sight (``gc.freeze``); young collections stay automatic, with thresholds that keep
each one to a few milliseconds; and full collections run on a clock (``collect_on_a_clock``)
instead of whenever allocation counts say, so a pause hits at most one moment in
``FULL_COLLECTION_EVERY`` seconds. Garbage made later (requests, turns, sessions) is still
collected: young cycles within seconds, old ones at the next full collection.
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
FULL_COLLECTION_EVERY = 10.0


def settle_heap() -> None:
    """Call once, when startup is over and the process begins serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, NO_AUTOMATIC_FULL)


async def collect_on_a_clock(every: float = FULL_COLLECTION_EVERY) -> None:
    """Full collections every ``every`` seconds, for as long as the server runs."""
    while True:
        await trio.sleep(every)
        started = time.perf_counter()
        found = gc.collect()
        log.debug("full collection: %d objects freed in %.1f ms", found, _ms_since(started))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
