"""What one network read brought goes on as few events as it can, in order."""

from __future__ import annotations

from openheim.providers.base import (
    FinishReason,
    ProviderEvent,
    StreamEnd,
    TextDelta,
    ThinkingDelta,
    merge_deltas,
)

END = StreamEnd("ab", (), FinishReason.STOP, None)


def test_neighbouring_deltas_of_one_kind_merge_in_order() -> None:
    events: list[ProviderEvent] = [
        ThinkingDelta("hm"),
        ThinkingDelta("m."),
        TextDelta("a"),
        TextDelta("b"),
        TextDelta("c"),
        ThinkingDelta("again"),
        TextDelta("d"),
        END,
    ]
    assert merge_deltas(events) == [
        ThinkingDelta("hmm."),
        TextDelta("abc"),
        ThinkingDelta("again"),
        TextDelta("d"),
        END,
    ]


def test_a_single_event_or_none_is_left_alone() -> None:
    one: list[ProviderEvent] = [TextDelta("x")]
    assert merge_deltas(one) is one
    assert merge_deltas([]) == []


def test_other_events_never_merge_and_split_runs() -> None:
    events: list[ProviderEvent] = [TextDelta("a"), END, TextDelta("b"), END]
    assert merge_deltas(events) == events
