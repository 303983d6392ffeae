"""Helpers shared by the stream-decoder tests of every provider."""

from __future__ import annotations

import itertools

from openheim.providers.base import (
    ProviderEvent,
    StreamDecoder,
    StreamEnd,
    TextDelta,
    ThinkingDelta,
)


def decode_all(decoder: StreamDecoder, chunks: tuple[bytes, ...]) -> list[ProviderEvent]:
    events = [event for data in chunks for event in decoder.feed(data)]
    return events + decoder.close()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def end_of(events: list[ProviderEvent]) -> StreamEnd:
    ends = [event for event in events if isinstance(event, StreamEnd)]
    assert len(ends) == 1
    assert events[-1] is ends[0]
    return ends[0]


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def thoughts_of(events: list[ProviderEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, ThinkingDelta))
