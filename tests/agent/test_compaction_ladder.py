"""The compaction ladder without I/O: it always ends, every step shrinks, pairs stay whole."""

from __future__ import annotations

from collections.abc import Sequence

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from openheim.agent.compaction.compactor import CompactionSettings, Request, Summariser, compact
from openheim.agent.compaction.measure import Meter, request_units
from openheim.agent.compaction.steps import units_of
from openheim.agent.compaction.summarise import Summary, chunks, transcript_lines
from openheim.agent.compaction.view import cut, render, start_of_view, stub, view
from openheim.foundation.models import (
    Compaction,
    CompactionMethod,
    Conversation,
    Message,
    Role,
    ToolCall,
    ToolResult,
    Usage,
)

#: One turn: the prompt's length, then each tool step's output lengths, then the answer's.
Turn = tuple[int, list[list[int]], int]

turns = st.lists(
    st.tuples(
        st.integers(1, 3000),
        st.lists(st.lists(st.integers(0, 20_000), min_size=1, max_size=2), max_size=3),
        st.integers(0, 3000),
    ),
    min_size=1,
    max_size=8,
)


def transcript(spec: Sequence[Turn]) -> Conversation:
    conversation = Conversation(id="c")
    number = 0
    for prompt, steps, answer in spec:
        conversation.append(Message.user("p" * prompt))
        for outputs in steps:
            calls = []
            for _ in outputs:
                number += 1
                calls.append(ToolCall(f"call_{number}", "read", '{"path": "x"}'))
            conversation.append(Message.assistant(None, tuple(calls)))
            for call, size in zip(calls, outputs, strict=True):
                conversation.append(Message.tool(call, ToolResult("o" * size)))
        conversation.append(Message.assistant("a" * answer))
    return conversation


def pairs_whole(messages: Sequence[Message]) -> bool:
    """Each result follows its call, and each call of a finished step has its result."""
    asked: set[str] = set()
    for message in messages:
        asked.update(call.id for call in message.tool_calls)
        if message.role is Role.TOOL and message.tool_call_id not in asked:
            return False
    answered = {m.tool_call_id for m in messages if m.role is Role.TOOL}
    return asked <= answered


def summariser_of(kind: str) -> Summariser:
    async def summarise(
        previous: str | None, messages: Sequence[Message], max_chars: int, max_tokens: int
    ) -> Summary | None:
        assert sum(len(m.content or "") for m in messages) >= 0
        if kind == "fail":
            return None
        if kind == "huge":  # a summary bigger than what it replaces must not be taken
            return Summary("s" * 200_000, Usage(1, 1))
        return Summary("short summary", Usage(1, 1))

    return summarise


@settings(max_examples=150, deadline=None)
@given(
    spec=turns,
    window=st.integers(1024, 40_000),
    kind=st.sampled_from(["ok", "fail", "huge", "none"]),
)
def test_the_ladder_ends_and_every_compaction_strictly_shrinks(
    spec: list[Turn], window: int, kind: str
) -> None:
    conversation = transcript(spec)
    config = CompactionSettings(window=window)
    meter = Meter()
    request = Request("m", request_units([Message.system("be brief")]))
    summariser = None if kind == "none" else summariser_of(kind)

    async def run() -> int:
        rounds = 0
        while True:
            before = units_of(conversation.messages, latest_or_empty(conversation), request.fixed)
            outcome = await compact(
                conversation,
                request,
                meter=meter,
                settings=config,
                summariser=summariser,
                force=True,
            )
            if outcome is None:
                return rounds
            rounds += 1
            assert rounds <= 4 * len(conversation.messages) + 10, "compaction does not end"
            conversation.compactions.append(outcome.record)
            after = units_of(conversation.messages, outcome.record, request.fixed)
            assert after < before
            assert outcome.record.tokens_after < outcome.record.tokens_before
            assert pairs_whole(view(conversation))

    trio.run(run)
    shown = view(conversation)
    # The latest message is always shown (at worst cut), so the model knows where it is.
    assert pairs_whole(shown) and shown[-1].role is conversation.messages[-1].role


def latest_or_empty(conversation: Conversation) -> Compaction:
    from openheim.agent.compaction.steps import EMPTY

    return conversation.compactions[-1] if conversation.compactions else EMPTY


async def test_below_the_threshold_nothing_happens() -> None:
    conversation = transcript([(100, [[100]], 100)])
    outcome = await compact(
        conversation,
        Request("m", 0.0),
        meter=Meter(),
        settings=CompactionSettings(window=8000),
        summariser=summariser_of("ok"),
    )
    assert outcome is None


def test_the_view_replaces_elides_and_cuts_without_touching_the_transcript() -> None:
    conversation = transcript([(10, [[5000]], 10), (10, [[3000]], 10)])
    messages = list(conversation.messages)
    record = Compaction(
        at=len(messages),
        method=CompactionMethod.SUMMARY,
        tokens_before=9,
        tokens_after=1,
        upto=4,
        summary="they read a file",
        elided=(6,),
    )
    shown = render(messages, record)
    assert shown[0].role is Role.USER and "they read a file" in (shown[0].content or "")
    assert shown[3].content == "[output of read, 3000 bytes, elided]" == stub(messages[6])
    assert conversation.messages == messages
    truncated = render(
        messages, Compaction(0, CompactionMethod.TRUNCATE, 2, 1, truncated=((2, 900),))
    )
    assert "characters cut here to fit the context window" in (truncated[2].content or "")
    assert len(truncated[2].content or "") < 5000


def test_a_cut_never_starts_the_view_at_a_tool_result() -> None:
    conversation = transcript([(10, [[10, 10]], 10)])
    assert conversation.messages[2].role is Role.TOOL
    assert start_of_view(conversation.messages, 2) == 4


def test_cut_keeps_head_and_tail() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    short = cut(text, 600)
    assert short.startswith("HEAD") and short.endswith("TAIL") and len(short) < 800


def test_summariser_input_is_bounded_and_chunked() -> None:
    messages = [Message.user("u" * 50_000), Message.assistant("a" * 3000)] * 3
    lines = transcript_lines(messages, 4000)
    assert all(len(line) <= 4100 for line in lines)
    parts = chunks(lines, 8000)
    assert len(parts) > 1 and all(len(part) <= 8000 + 4100 for part in parts)


def test_the_meter_learns_from_reports_and_estimates_what_was_added() -> None:
    meter = Meter()
    assert meter.measure(1000, "m") == 1000
    meter.observe(1000, 1500, "m")
    assert meter.scale == 1.5
    assert meter.measure(1100, "m") == 1650  # reported, plus the added 100 units scaled
    assert meter.measure(1100, "other") == 1650  # no report for that model: plain estimate
    meter.observe(1000, 100_000, "m")  # a wild report is clamped
    assert meter.scale == 3.0
    meter.overflowed(1000, 8000, "m")
    assert meter.measure(1000, "m") > 8000
