"""Provider faults, each hitting the second model call of a turn, after a tool has run.

Retryable faults are retried (the caller sees ``ProviderRetrying``) and the turn succeeds;
final ones end the turn with a ``ProviderError`` naming the cause. Either way the store keeps
the prompt, the tool call and its result, and the next prompt carries all of it.
"""

from __future__ import annotations

import pytest

from openheim.agent.events import AgentEvent, MessageChunk
from openheim.foundation.errors import ProviderError
from openheim.testing import HttpError, Reply, Script
from openheim.testing.script import split_evenly
from tests.faults.conftest import (
    Harness,
    Outcome,
    Summary,
    assistant,
    run_turn,
    session_with_history,
    user,
)
from tests.faults.proxy import ResetPlan, ResettingProxy

PRIOR = [user("hello"), assistant("Hi.")]
TOOL_TURN: list[Summary] = [
    user("run the tool"),
    assistant("", "call_1"),
    ("tool", "tool-ran", ("call_1",)),
]
#: Requests before the faulted model call: "hello", then the call that asked for the tool.
BEFORE_FAULT = 2
ASK_FOR_TOOL = Reply.tool_call("execute_command", {"command": "echo tool-ran"}, id="call_1")
STATUSES = [500, 502, 503, 529]


def check_retried(
    harness: Harness, outcome: Outcome, attempts: int, reached: int | None = None
) -> None:
    """The turn succeeded after ``attempts`` tries of the same request, ``reached`` (default
    all) of which got to the fake LLM; the caller saw the answer once."""
    assert outcome.error is None, outcome.error
    assert outcome.finished is not None and outcome.finished.stop_reason == "end_turn"
    assert outcome.text == "Done."
    assert len(outcome.retries) == attempts - 1
    assert len(harness.llm.requests) == BEFORE_FAULT + (attempts if reached is None else reached)
    tries = [request.body for request in harness.llm.requests[BEFORE_FAULT:]]
    assert all(body == tries[0] for body in tries)
    assert harness.sent() == [*PRIOR, *TOOL_TURN]


def check_failed(harness: Harness, outcome: Outcome, session_id: str, partial: str) -> None:
    """The turn failed after one try; the store holds the tool's answer and the text that
    reached the caller, once."""
    assert isinstance(outcome.error, ProviderError)
    assert outcome.finished is None
    assert outcome.retries == []
    assert len(harness.llm.requests) == BEFORE_FAULT + 1
    assert outcome.text == partial
    tail = [assistant(partial)] if partial else []
    assert harness.stored(session_id) == [*PRIOR, *TOOL_TURN, *tail]


async def test_429_waits_as_long_as_retry_after_asks(harness: Harness) -> None:
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        harness.llm.script.extend(
            [ASK_FOR_TOOL, HttpError(429, retry_after=1), Reply.text("Done.")]
        )
        outcome = await run_turn(session, "run the tool")
        check_retried(harness, outcome, attempts=2)
        (retry,) = outcome.retries
        assert "HTTP 429" in retry.message and "retrying in 1.0 s" in retry.message
        limited, retried = harness.llm.requests[BEFORE_FAULT:]
        assert retried.received_at - limited.received_at >= 1.0
        assert harness.stored(session.id) == [*PRIOR, *TOOL_TURN, assistant("Done.")]
        await harness.check_reusable(session)


@pytest.mark.parametrize("status", STATUSES, ids=[f"http-{s}" for s in STATUSES])
async def test_server_errors_within_the_retry_budget(harness: Harness, status: int) -> None:
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        faults = [HttpError(status), HttpError(status)]  # max_retries = 2: the whole budget
        harness.llm.script.extend([ASK_FOR_TOOL, *faults, Reply.text("Done.")])
        outcome = await run_turn(session, "run the tool")
        check_retried(harness, outcome, attempts=3)
        assert all(f"HTTP {status}" in retry.message for retry in outcome.retries)
        assert harness.stored(session.id) == [*PRIOR, *TOOL_TURN, assistant("Done.")]
        await harness.check_reusable(session)


@pytest.mark.parametrize("status", STATUSES, ids=[f"http-{s}" for s in STATUSES])
async def test_server_errors_beyond_the_retry_budget(harness: Harness, status: int) -> None:
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        harness.llm.script.extend([ASK_FOR_TOOL, *[HttpError(status)] * 3])
        outcome = await run_turn(session, "run the tool")
        assert isinstance(outcome.error, ProviderError)
        assert f"HTTP {status}" in str(outcome.error)
        assert len(outcome.retries) == 2 and outcome.finished is None
        assert len(harness.llm.requests) == BEFORE_FAULT + 3
        assert harness.stored(session.id) == [*PRIOR, *TOOL_TURN]
        await harness.check_reusable(session)


async def test_reset_before_the_first_byte_is_retried(harness: Harness) -> None:
    """The fake LLM sends 200 and its headers, then closes the connection (FIN)."""
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        dropped = Reply.text("never seen", drop_after=0)
        harness.llm.script.extend([ASK_FOR_TOOL, dropped, Reply.text("Done.")])
        outcome = await run_turn(session, "run the tool")
        check_retried(harness, outcome, attempts=2)
        assert "network error" in outcome.retries[0].message
        assert harness.stored(session.id) == [*PRIOR, *TOOL_TURN, assistant("Done.")]
        await harness.check_reusable(session)


async def test_rst_before_the_response_is_retried(harness: Harness, proxy: ResettingProxy) -> None:
    """A proxy resets the connection (RST) as the request arrives: the fake LLM never sees
    that try, the provider sees a reset, and retries."""
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        proxy.plan = ResetPlan(b"tool-ran", "before-response")
        harness.llm.script.extend([ASK_FOR_TOOL, Reply.text("Done.")])
        outcome = await run_turn(session, "run the tool")
        assert proxy.resets == 1
        check_retried(harness, outcome, attempts=2, reached=1)
        (retry,) = outcome.retries
        assert "network error" in retry.message and "Connection reset by peer" in retry.message
        assert harness.stored(session.id) == [*PRIOR, *TOOL_TURN, assistant("Done.")]
        await harness.check_reusable(session)


async def test_reset_after_the_first_byte_fails_without_repeating_output(
    harness: Harness,
) -> None:
    """The fake LLM closes the connection (FIN) after three events of the answer."""
    answer = "one two three four five six"
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        dropped = Reply.text(answer, pieces=6, drop_after=3)
        harness.llm.script.extend([ASK_FOR_TOOL, dropped, Reply.text("a retry would say this")])
        outcome = await run_turn(session, "run the tool")
        assert "broke off after output began" in str(outcome.error)
        check_failed(harness, outcome, session.id, "".join(split_evenly(answer, 6)[:3]))
        harness.llm.app.script = Script()  # drop the reply a retry would have had
        await harness.check_reusable(session)


async def test_rst_mid_stream_fails_without_repeating_output(
    harness: Harness, proxy: ResettingProxy
) -> None:
    """A proxy forwards three events of the answer, then resets the connection (RST)."""
    answer = "one two three four five six"
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        plan = proxy.plan = ResetPlan(b"tool-ran", "mid-stream", events=3)
        streamed = Reply.text(answer, pieces=6, chunk_delay=0.02)  # one event per read
        harness.llm.script.extend([ASK_FOR_TOOL, streamed, Reply.text("a retry would say this")])
        chunks = 0

        def count_chunks(event: AgentEvent) -> None:
            nonlocal chunks
            if isinstance(event, MessageChunk):
                chunks += 1
                if chunks == plan.events:
                    plan.forwarded_read.set()  # the reset may come now: nothing is left unread

        outcome = await run_turn(session, "run the tool", count_chunks)
        assert proxy.resets == 1
        message = str(outcome.error)
        assert "Connection reset by peer" in message and "broke off after output began" in message
        check_failed(harness, outcome, session.id, "".join(split_evenly(answer, 6)[:3]))
        harness.llm.app.script = Script()
        await harness.check_reusable(session)


async def test_stall_before_output_times_out_and_is_retried(harness: Harness) -> None:
    harness.write_config(timeout_secs=0.5)
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        stalled = Reply.text("never seen", stall_after=0)
        harness.llm.script.extend([ASK_FOR_TOOL, stalled, Reply.text("Done.")])
        outcome = await run_turn(session, "run the tool")
        check_retried(harness, outcome, attempts=2)
        assert "no data for 0.5 s" in outcome.retries[0].message
        stalled_at, retried_at = (r.received_at for r in harness.llm.requests[BEFORE_FAULT:])
        assert retried_at - stalled_at >= 0.5
        assert harness.stored(session.id) == [*PRIOR, *TOOL_TURN, assistant("Done.")]
        await harness.check_reusable(session)


async def test_stall_after_output_fails_clearly(harness: Harness) -> None:
    harness.write_config(timeout_secs=0.5)
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        stalled = Reply.text("half an answer", pieces=2, stall_after=1)  # "half an", then nothing
        harness.llm.script.extend([ASK_FOR_TOOL, stalled])
        outcome = await run_turn(session, "run the tool")
        message = str(outcome.error)
        assert "no data for 0.5 s" in message and "broke off after output began" in message
        check_failed(harness, outcome, session.id, "half an")
        await harness.check_reusable(session)


async def test_malformed_sse_fails_clearly(harness: Harness) -> None:
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        harness.llm.script.extend(
            [ASK_FOR_TOOL, Reply.text("abc def", pieces=2, malformed_after=1)]
        )
        outcome = await run_turn(session, "run the tool")
        assert "malformed JSON in stream" in str(outcome.error)
        check_failed(harness, outcome, session.id, "abc ")
        await harness.check_reusable(session)
