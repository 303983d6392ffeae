"""Lazy session actors: no task until the first request, none again after the quiet period.

The fake LLM is a real server on 127.0.0.1 in this trio run; the clock is trio's MockClock
(it never moves on its own), so the idle period passes only when the test jumps it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from openheim.agent.events import StopReason
from openheim.foundation.errors import OpenheimError
from openheim.session import Runtime, Session, SessionOptions, SessionRegistry
from openheim.testing import FakeLLMServer, Reply
from tests.e2e.conftest import request_messages
from tests.session.conftest import fake_runtime

IDLE = 60


@pytest.fixture
async def runtime(llm: FakeLLMServer, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with fake_runtime(llm, tmp_path, f"session_idle_secs = {IDLE}") as runtime:
        yield runtime


def task_names(nursery: trio.Nursery) -> list[str]:
    """The names of the tasks running in ``nursery`` and below it."""
    names = []
    for task in nursery.child_tasks:
        names.append(task.name)
        for child in task.child_nurseries:
            names.extend(task_names(child))
    return names


def actor_tasks() -> int:
    """Session actor tasks in this run (each runs ``SessionRegistry._run``)."""
    root = trio.lowlevel.current_root_task()
    names = [name for nursery in root.child_nurseries for name in task_names(nursery)]
    return sum(1 for name in names if name.endswith("SessionRegistry._run"))


async def idle_out(clock: trio.testing.MockClock, session: Session) -> None:
    """Let the quiet period pass; returns once the actor has stopped."""
    await trio.testing.wait_all_tasks_blocked()
    clock.jump(IDLE + 1)
    await trio.testing.wait_all_tasks_blocked()
    assert not session.serving


async def test_a_session_has_no_task_until_its_first_prompt_and_none_after_the_quiet_period(
    llm: FakeLLMServer, runtime: Runtime, tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    llm.script.extend([Reply.text("One."), Reply.text("Two.")])
    async with SessionRegistry.open(runtime) as sessions:
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        await trio.testing.wait_all_tasks_blocked()
        assert not session.serving and actor_tasks() == 0

        assert (await session.prompt("first")).stop_reason is StopReason.END_TURN
        assert session.serving and actor_tasks() == 1

        await idle_out(mock_clock, session)
        assert actor_tasks() == 0
        assert sessions.get(session.id) is session  # still open: only the task went

        assert (await session.prompt("second")).stop_reason is StopReason.END_TURN
        texts = [message["content"] for message in request_messages(llm, 1)]
        assert texts == ["first", "One.", "second"]  # the whole conversation went along
        assert [m.content for m in session.conversation.messages][-1] == "Two."


async def test_close_works_whether_the_actor_never_ran_idled_out_waits_or_runs_a_turn(
    llm: FakeLLMServer, runtime: Runtime, tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    llm.script.extend([Reply.text("A."), Reply.text("B."), Reply.text("C", stall_after=1)])
    async with SessionRegistry.open(runtime) as sessions, trio.open_nursery() as nursery:
        never = await sessions.create(SessionOptions(cwd=tmp_path))
        await never.save()  # as session/new does
        assert not never.serving
        stopped = await sessions.create(SessionOptions(cwd=tmp_path))
        await stopped.prompt("hi")
        await idle_out(mock_clock, stopped)
        waiting = await sessions.create(SessionOptions(cwd=tmp_path))
        await waiting.prompt("hi")
        assert waiting.serving
        turning = await sessions.create(SessionOptions(cwd=tmp_path))
        nursery.start_soon(turning.prompt, "stalls")
        await llm.wait_for_requests(3)
        assert turning.busy

        for session in (never, stopped, waiting, turning):
            sessions.close(session.id, "closed by the test")
            with trio.fail_after(5):
                await session.ended.wait()
            with pytest.raises(OpenheimError, match="closed by the test"):
                await session.prompt("again")
            session.close()  # twice is harmless
        assert len(sessions) == 0

        # Each lease is released (once: a second release would fail the nursery), so each
        # conversation loads again here (a load waits for its closing session's release).
        for session in (never, stopped, waiting, turning):
            again = await sessions.load(session.id, SessionOptions(cwd=tmp_path))
            assert again is not session and not again.serving
            assert again.conversation.messages == session.conversation.messages
        assert len(sessions.leases()) == 4 and actor_tasks() == 0
        assert turning.conversation.messages[0].content == "stalls"


async def test_a_prompt_sent_as_the_quiet_period_ends_is_answered(
    llm: FakeLLMServer, runtime: Runtime, tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    llm.script.extend([Reply.text("A."), Reply.text("B.")])
    async with SessionRegistry.open(runtime) as sessions:
        session = await sessions.create(SessionOptions(cwd=tmp_path))
        await session.prompt("one")
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(IDLE + 1)  # the actor's timer has fired; it has not run yet
        finished = await session.prompt("two")
        assert finished.stop_reason is StopReason.END_TURN
        assert len(llm.requests) == 2
