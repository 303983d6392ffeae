"""The memory budget over a real registry and file store: what it evicts, in which order.

The resident set is what the gauge reads; here it reads a figure the test derives from the
live sessions (1,000 bytes each), so "under the budget" is reached after a known number of
evictions. The real reading (``/proc/self/statm``) is checked on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from openheim.foundation.errors import OpenheimError, ServerBusyError
from openheim.session import Runtime, SessionOptions, SessionRegistry
from openheim.session.memory import MemoryBudget, RssGauge, read_rss
from openheim.testing import FakeLLMServer, Reply
from tests.session.conftest import fake_runtime

PER_SESSION = 1000


@pytest.fixture
async def runtime(llm: FakeLLMServer, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with fake_runtime(llm, tmp_path, "") as runtime:
        yield runtime


def test_the_resident_set_is_read_from_proc_and_kept_for_a_second() -> None:
    assert read_rss() > 1024 * 1024
    now = [0.0]
    reads = iter([100, 200, 300])
    gauge = RssGauge(read=lambda: next(reads), clock=lambda: now[0])
    assert gauge.bytes() == 100
    now[0] = 0.5
    assert gauge.bytes() == 100
    assert gauge.bytes(fresh=True) == 200
    now[0] = 1.6
    assert gauge.bytes() == 300


async def test_idle_sessions_are_saved_and_evicted_unheld_and_oldest_first_until_under(
    llm: FakeLLMServer, runtime: Runtime, tmp_path: Path
) -> None:
    llm.script.extend([Reply.text("Kept."), Reply.text("Late", stall_after=1)])
    live: list[SessionRegistry] = []

    def rss() -> int:
        return sum(len(registry) for registry in live) * PER_SESSION

    budget = MemoryBudget(10 * PER_SESSION, RssGauge(read=rss, max_age=0))
    runtime = runtime.with_store(runtime.store, memory=budget)
    options = SessionOptions(cwd=tmp_path)
    async with SessionRegistry.open(runtime) as sessions, trio.open_nursery() as nursery:
        live.append(sessions)
        held = await sessions.create(options)
        await held.prompt("remember me")
        oldest_unheld = await sessions.create(options)
        await oldest_unheld.save()
        newer_unheld = await sessions.create(options)
        await newer_unheld.save()
        busy = await sessions.create(options)
        nursery.start_soon(busy.prompt, "runs on")
        await llm.wait_for_requests(2)
        assert busy.busy
        async with held.attach(None):
            # Four sessions, room for three and a half: the oldest unheld idle one goes.
            budget.limit_bytes = 3 * PER_SESSION + PER_SESSION // 2
            third = await sessions.create(options)  # over: evicts until there is room
            assert sessions.get(oldest_unheld.id) is None
            assert {s.id for s in sessions.sessions()} == {
                held.id,
                newer_unheld.id,
                busy.id,
                third.id,
            }
            assert budget.evictions == 1 and budget.refusals == 0

            # Over whatever goes: every idle session is evicted (the unheld ones first, in
            # doubling batches), the running turn stays, and the request is refused.
            budget.limit_bytes = PER_SESSION // 2
            with pytest.raises(ServerBusyError, match="server busy: memory budget reached"):
                await sessions.create(options)
            assert [s.id for s in sessions.sessions()] == [busy.id]
            assert budget.evictions == 4 and budget.refusals == 1
            with pytest.raises(ServerBusyError):
                await busy.compact()  # a request to a live session is refused too
        busy.cancel()

        # Evicted sessions were saved: they load again, history and all.
        budget.limit_bytes = 100 * PER_SESSION
        again = await sessions.load(held.id, options)
        assert [m.content for m in again.conversation.messages] == ["remember me", "Kept."]
        with pytest.raises(OpenheimError, match="closed to free memory; fix: load it again"):
            await held.prompt("the evicted copy")
