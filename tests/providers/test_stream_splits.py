"""Every provider's decoder gives the same events however its realistic stream is chunked.

The recorded streams and expectations live in tests/providers/streams/; this runs one set
of chunking checks over all of them (random replies are chunked in tests/fuzz too).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openheim.providers.base import ProviderEvent, TextDelta, ThinkingDelta
from tests.providers.streams import (
    anthropic,
    end_of,
    gemini,
    openai,
    responses,
    split_at,
    text_of,
    thoughts_of,
)

DIALECTS = {
    "openai": openai,
    "anthropic": anthropic,
    "gemini": gemini,
    "openai_responses": responses,
}
#: Gemini frames events with LF only; the others accept CRLF as SSE allows.
CRLF = {"openai": True, "anthropic": True, "gemini": False, "openai_responses": True}


def check(module: ModuleType, chunks: list[bytes], context: object = None) -> None:
    """Text and thoughts arrive as they stream, apart; tool calls arrive assembled, with the
    end, which also carries the thinking to send back."""
    decode: Callable[..., list[ProviderEvent]] = module.decode
    events = decode(*chunks)
    end = module.EXPECTED_END
    assert end_of(events) == end, context
    assert text_of(events) == end.text, context
    assert end.reasoning is not None
    assert thoughts_of(events) == end.reasoning.text, context
    streamed = (TextDelta, ThinkingDelta)
    assert [e for e in events if not isinstance(e, streamed)] == [end], context


@pytest.mark.parametrize("name", DIALECTS)
def test_every_two_way_split(name: str) -> None:
    module = DIALECTS[name]
    stream: bytes = module.REALISTIC_STREAM
    for cut in range(len(stream) + 1):
        check(module, [stream[:cut], stream[cut:]], cut)


@pytest.mark.parametrize("name", DIALECTS)
def test_single_byte_feeds(name: str) -> None:
    module = DIALECTS[name]
    data: bytes = module.REALISTIC_STREAM
    if CRLF[name]:
        data = data.replace(b"\n", b"\r\n")  # also splits every "\r\n" pair
    check(module, [data[i : i + 1] for i in range(len(data))])


@pytest.mark.parametrize("name", DIALECTS)
@settings(database=None, max_examples=200)
@given(data=st.data())
def test_random_splits(name: str, data: st.DataObject) -> None:
    module = DIALECTS[name]
    stream: bytes = module.REALISTIC_STREAM
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30))
    check(module, split_at(stream, cuts))
