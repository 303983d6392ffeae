"""SSE decoder fuzz: splitting, line endings and arbitrary bytes.

The decoder documents one error only (``RuntimeError`` for a ``feed`` after ``close``); every
other input, however broken, must decode to some events without raising or hanging.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from openheim.providers.sse import SSEDecoder, SSEEvent
from tests.fuzz.profiles import FUZZ, no_hang


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    with no_hang():
        events = [event for chunk in chunks for event in decoder.feed(chunk)]
        return events + decoder.close()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# Field values: any text without line breaks (they would end the line), surrogates excluded
# because a stream is bytes (they cannot be encoded).
_value = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=12)
_line = st.one_of(
    st.just(""),
    st.builds("data: {}".format, _value),
    st.builds("data:{}".format, _value),
    st.just("data"),
    st.builds("event: {}".format, _value),
    st.builds("id: {}".format, _value),
    st.builds("retry: {}".format, st.from_regex(r"[0-9]{0,6}x?", fullmatch=True)),
    st.builds(": {}".format, _value),
    _value,  # a field name without a colon, or garbage
)


@st.composite
def line_lists(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Lines and the EOL after each; a lone CR never precedes an empty LF-ended line
    (``\\r`` + ``\\n`` would be one CRLF, which changes the meaning, not a bug)."""
    lines = draw(st.lists(_line, max_size=16))
    eols = draw(
        st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=len(lines), max_size=len(lines))
    )
    for i in range(1, len(lines)):
        if eols[i - 1] == "\r" and lines[i] == "" and eols[i] == "\n":
            eols[i] = "\r\n"
    return lines, eols


def join(lines: list[str], eols: list[str], *, bom: bool = False) -> bytes:
    text = "".join(line + eol for line, eol in zip(lines, eols, strict=True))
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


@FUZZ
@given(stream=line_lists(), bom=st.booleans(), data=st.data())
def test_any_byte_split_gives_the_events_of_one_chunk(
    stream: tuple[list[str], list[str]], bom: bool, data: st.DataObject
) -> None:
    """Reads split anywhere (inside a UTF-8 character, a CRLF, the BOM) change nothing."""
    raw = join(*stream, bom=bom)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    assert decode(split(raw, cuts)) == decode([raw])


@FUZZ
@given(stream=line_lists(), data=st.data())
def test_crlf_cr_and_lf_endings_are_equivalent(
    stream: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    """Whatever mix of endings a server uses, the events are those of the LF-only stream."""
    lines, eols = stream
    mixed = join(lines, eols)
    cuts = data.draw(st.lists(st.integers(0, len(mixed)), max_size=6))
    assert decode(split(mixed, cuts)) == decode([join(lines, ["\n"] * len(lines))])


@FUZZ
@example(raw=b"\xff\xfe\x00\r\r\n\n", cuts=[1, 3])
@example(raw=b"data: \xe2\x82\n\n", cuts=[7])  # a UTF-8 sequence cut short by the line end
@example(raw=b"\xef\xbb", cuts=[1])  # half a BOM, then EOF
@given(raw=st.binary(max_size=512), cuts=st.lists(st.integers(0, 512), max_size=8))
def test_arbitrary_bytes_never_raise(raw: bytes, cuts: list[int]) -> None:
    """Garbage decodes to some events (invalid UTF-8 becomes U+FFFD); it never raises."""
    events = decode(split(raw, [c for c in cuts if c <= len(raw)]))
    for event in events:
        assert isinstance(event.data, str) and isinstance(event.event, str) and event.event
        assert event.retry is None or event.retry >= 0
        assert event.id is None or "\0" not in event.id
        assert "\r" not in event.data  # a CR always ends a line
    assert events == decode([raw])


@FUZZ
@given(raw=st.binary(max_size=256))
def test_feed_after_close_is_the_documented_error(raw: bytes) -> None:
    decoder = SSEDecoder()
    decoder.feed(raw)
    decoder.close()
    assert decoder.close() == []
    with pytest.raises(RuntimeError, match="after close"):
        decoder.feed(raw)


@FUZZ
@example(size=2_000_000, piece=1)
@given(size=st.integers(1, 2_000_000), piece=st.integers(1, 65_536))
def test_a_huge_line_in_small_pieces_decodes_whole(size: int, piece: int) -> None:
    """No line-length limit is documented, so a huge line must simply work, and well within
    the hang limit (each feed costs its own bytes, not the line so far)."""
    raw = b"data: " + b"x" * size + b"\n\n"
    piece = max(piece, len(raw) // 5_000)  # at most ~5,000 feeds: the run stays short
    chunks = [raw[i : i + piece] for i in range(0, len(raw), piece)]
    assert decode(chunks) == [SSEEvent("x" * size)]
