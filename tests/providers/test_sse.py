from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openheim.providers.sse import SSEDecoder, SSEEvent, SSEEventTooLarge


def decode(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def decode_bytewise(data: bytes) -> list[SSEEvent]:
    return decode(*(data[i : i + 1] for i in range(len(data))))


def test_simple_events() -> None:
    assert decode(b"data: one\n\ndata: two\n\n") == [SSEEvent("one"), SSEEvent("two")]


def test_event_type_id_and_retry() -> None:
    events = decode(b"event: ping\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert events == [
        SSEEvent("x", event="ping", id="7", retry=1500),
        # The last event id persists; the event type and retry do not.
        SSEEvent("y", event="message", id="7", retry=None),
    ]


def test_invalid_retry_and_id_with_nul_are_ignored() -> None:
    assert decode(b"retry: 1s\nid: a\0b\ndata: x\n\n") == [SSEEvent("x")]


def test_multiple_data_lines_join_with_newline() -> None:
    assert decode(b"data: a\ndata:b\ndata:  c\n\n") == [SSEEvent("a\nb\n c")]


def test_only_one_leading_space_is_stripped() -> None:
    assert decode(b"data:   spaced \n\n") == [SSEEvent("  spaced ")]


def test_field_without_colon_has_empty_value() -> None:
    assert decode(b"data\n\n") == [SSEEvent("")]
    assert decode(b"data\ndata\n\n") == [SSEEvent("\n")]


def test_comments_and_blank_blocks_dispatch_nothing() -> None:
    stream = b": keep-alive\n\n:\n\nevent: x\n\nid: 3\n\ndata: real\n\n"
    assert decode(stream) == [SSEEvent("real", id="3")]


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\n\n") == [SSEEvent("x")]


def test_value_may_contain_colons() -> None:
    assert decode(b'data: {"a": "b:c"}\n\n') == [SSEEvent('{"a": "b:c"}')]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    stream = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert decode(stream) == [SSEEvent("a\nb"), SSEEvent("c")]
    assert decode_bytewise(stream) == [SSEEvent("a\nb"), SSEEvent("c")]


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # If the "\n" counted as a second line end, this would dispatch "a" early and twice.
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == [SSEEvent("a\nb")]
    assert decoder.feed(b"\n") == []
    assert decoder.close() == []


def test_cr_then_cr_is_a_blank_line() -> None:
    assert decode(b"data: a\r", b"\r") == [SSEEvent("a")]


def test_multibyte_character_split_across_feeds() -> None:
    data = "data: héllo 😀 wörld\n\n".encode()
    expected = [SSEEvent("héllo 😀 wörld")]
    for cut in range(len(data) + 1):
        assert decode(data[:cut], data[cut:]) == expected
    assert decode_bytewise(data) == expected


def test_invalid_utf8_is_replaced() -> None:
    assert decode(b"data: a\xffb\n\n") == [SSEEvent("a\ufffdb")]


def test_leading_bom_is_stripped_even_when_split() -> None:
    stream = "\ufeffdata: x\n\n".encode()
    assert decode(stream) == [SSEEvent("x")]
    assert decode_bytewise(stream) == [SSEEvent("x")]


def test_only_the_first_bom_is_stripped() -> None:
    # A BOM later in the stream is content: here it makes an unknown field name.
    assert decode("\ufeff\ufeffdata: x\n\ndata: y\n\n".encode()) == [SSEEvent("y")]


def test_unterminated_event_at_eof_is_dropped() -> None:
    assert decode(b"data: done\n\ndata: partial\n") == [SSEEvent("done")]
    assert decode(b"data: partial") == []


def test_truncated_utf8_at_eof_does_not_crash() -> None:
    assert decode(b"data: x\n\ndata: \xe2\x82") == [SSEEvent("x")]


def test_feed_after_close_is_an_error() -> None:
    decoder = SSEDecoder()
    decoder.close()
    assert decoder.close() == []
    with pytest.raises(RuntimeError, match="after close"):
        decoder.feed(b"data: x\n\n")


def test_long_line_in_many_small_feeds() -> None:
    payload = "x" * 100_000
    data = f"data: {payload}\n\n".encode()
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert decode(*chunks) == [SSEEvent(payload)]


# A stream made of arbitrary lines; whatever it means, splitting it must not change it.
_line = st.one_of(
    st.just(""),
    st.builds(lambda v: f"data: {v}", st.text(alphabet="ab:é😀 \ufeff", max_size=6)),
    st.builds(lambda v: f"event:{v}", st.text(alphabet="xy", max_size=2)),
    st.builds(lambda v: f"id: {v}", st.text(alphabet="12", max_size=2)),
    st.builds(lambda v: f"retry: {v}", st.text(alphabet="09x", max_size=3)),
    st.just(": comment"),
    st.just("data"),
)
_stream = st.builds(
    lambda lines, eols: "".join(line + eol for line, eol in zip(lines, eols, strict=False)),
    st.lists(_line, max_size=12),
    st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=12, max_size=12),
)


@settings(database=None, max_examples=300)
@given(stream=_stream, data=st.data())
def test_random_splits_give_the_same_events(stream: str, data: st.DataObject) -> None:
    raw = stream.encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    bounds = [0, *cuts, len(raw)]
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode(*chunks) == decode(raw)


def reference_decode(stream: str) -> list[SSEEvent]:
    """A whole-text, obviously-correct reading of the spec to check the incremental one."""
    lines = re.split(r"\r\n|\r|\n", stream.removeprefix("\ufeff"))
    lines.pop()  # the unterminated rest (possibly empty) never completes anything
    events: list[SSEEvent] = []
    data: list[str] = []
    kind, last_id, retry = "", None, None
    for line in lines:
        if not line:
            if data:
                events.append(SSEEvent("\n".join(data), kind or "message", last_id, retry))
            data, kind, retry = [], "", None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id":
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    return events


@settings(database=None, max_examples=300)
@given(stream=_stream)
def test_matches_the_reference_reading(stream: str) -> None:
    assert decode(stream.encode()) == reference_decode(stream)


def test_an_endless_line_is_refused_once_past_the_bound_in_any_split() -> None:
    for step in (1, 7, 100, 1000):
        decoder = SSEDecoder(max_event_chars=500)
        body = b"data: " + b"x" * 2000
        with pytest.raises(SSEEventTooLarge, match="an event over 500 characters"):
            for start in range(0, len(body), step):
                decoder.feed(body[start : start + step])
        assert start < 600  # refused soon after the bound, not at the end


def test_an_event_of_many_lines_is_refused_too() -> None:
    decoder = SSEDecoder(max_event_chars=500)
    with pytest.raises(SSEEventTooLarge):
        for _ in range(100):
            decoder.feed(b"data: 0123456789\n")


def test_events_under_the_bound_pass_however_many_arrive_in_one_feed() -> None:
    decoder = SSEDecoder(max_event_chars=100)
    body = b"".join(b"data: " + b"y" * 80 + b"\n\n" for _ in range(1000))
    events = decoder.feed(body)
    assert len(events) == 1000 and events[0].data == "y" * 80
