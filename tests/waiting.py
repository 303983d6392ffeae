"""Waiting for a condition that nothing announces, without guessing how long it takes.

Tests await events where the code has them (``Session.subscribe``, ``McpServerActor.wait_for``,
``FakeLLMServer.wait_for_requests``). Some things have none: a file or a process another
program makes or ends, ``/proc``, a flag on an object no event covers. ``wait_until`` polls
those. The deadline is generous so a loaded machine cannot fail a correct test, and the poll
interval only sets how soon the test notices, so nothing here is a guess at a duration.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

#: How long a condition may take before the test fails: far beyond any healthy run.
DEADLINE_SECS = 15.0
#: How often the condition is checked; short, so a met condition is noticed at once.
POLL_SECS = 0.01


async def wait_until(
    condition: Callable[[], object], *, seconds: float = DEADLINE_SECS, what: str = ""
) -> None:
    """Return as soon as ``condition()`` is true; fail the test after ``seconds``.

    ``condition`` may itself assert (e.g. that a process it waits on is still running).
    """
    with trio.move_on_after(seconds):
        while not condition():  # noqa: ASYNC110 (nothing to await: see the module doc)
            await trio.sleep(POLL_SECS)
        return
    raise AssertionError(f"gave up after {seconds:g} s waiting for {what or condition}")
