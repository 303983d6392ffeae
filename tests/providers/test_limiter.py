import itertools

import trio
import trio.testing

from openheim.providers.limiter import RateLimiter


async def test_max_in_flight_is_never_exceeded_and_all_finish() -> None:
    limiter = RateLimiter(max_in_flight=3)
    finished = []

    async def request(n: int) -> None:
        async with limiter.slot():
            assert limiter.in_flight <= 3
            await trio.testing.wait_all_tasks_blocked()  # hold the slot until all others queue
        finished.append(n)

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(request, n)
    assert sorted(finished) == list(range(20))
    assert limiter.peak_in_flight == 3


async def test_slots_are_granted_in_arrival_order() -> None:
    limiter = RateLimiter(max_in_flight=1)
    order = []

    async def request(n: int) -> None:
        async with limiter.slot():
            order.append(n)
            await trio.testing.wait_all_tasks_blocked()  # hold the slot while others queue

    async with trio.open_nursery() as nursery:
        for n in range(10):
            nursery.start_soon(request, n)
            await trio.testing.wait_all_tasks_blocked()  # n has queued (or holds the slot)
    assert order == list(range(10))


async def test_requests_per_minute_spaces_starts(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(requests_per_minute=60)
    starts = []

    async def request() -> None:
        async with limiter.slot():
            starts.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(request)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(starts)]
    assert gaps == [1.0, 1.0, 1.0]


async def test_pause_holds_every_request(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(max_in_flight=10)
    limiter.pause(5)
    started = trio.current_time()
    async with limiter.slot():
        assert trio.current_time() - started >= 5
    # A pause that ended is not felt.
    before = trio.current_time()
    async with limiter.slot():
        assert trio.current_time() == before
