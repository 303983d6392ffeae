"""Provider stream decoders fuzzed with the fake LLM's own renderers.

A random ``Reply`` is rendered to each wire format exactly as the fake server sends it, split
into random reads and decoded: the events must give back the reply (text, calls, usage, finish
reason). Mutated streams (cut, flipped, garbage lines, repeated or lost events, JSON with wrong
types) may decode to anything, but the only exception allowed is ``ProviderError``, the one
``StreamDecoder.close`` documents; never a hang, and never events after the one ``StreamEnd``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Usage
from openheim.providers.anthropic import AnthropicDialect, AnthropicStreamDecoder
from openheim.providers.base import (
    FinishReason,
    ProviderEvent,
    StreamDecoder,
    StreamEnd,
    TextDelta,
)
from openheim.providers.gemini import GeminiDialect
from openheim.providers.gemini_stream import GeminiStreamDecoder
from openheim.providers.openai import OpenAIDialect, OpenAIStreamDecoder
from openheim.providers.openai_responses import OpenAIResponsesDialect, ResponsesStreamDecoder
from openheim.providers.sse import SSEDecoder
from openheim.testing import (
    OpenAIChatDialect,
    RecordedRequest,
    Reply,
    TextChunk,
    ToolCallChunk,
    tool_call_chunks,
)
from openheim.testing.anthropic_wire import AnthropicMessagesDialect
from openheim.testing.gemini_wire import GeminiGenerateContentDialect, thought_signature
from openheim.testing.responses_wire import OpenAIResponsesDialect as FakeResponsesDialect
from openheim.testing.wire import StreamResponse
from tests.fuzz.profiles import FUZZ, no_hang
from tests.fuzz.strategies import hostile_values, json_objects, json_values, mutated_json

SEQUENCE = 7
TAG = "fz"


@attrs.frozen
class Wire:
    """One provider: how the fake renders a reply, and a fresh decoder for it."""

    name: str
    render: Callable[[Reply], tuple[bytes, ...]]
    decoder: Callable[[], StreamDecoder]
    #: Usage fields the format carries (the rest decode as 0).
    keeps_cache_write: bool
    #: Whether call ids travel (Gemini's do not: the decoder makes its own).
    sends_ids: bool
    #: The fields its decoder reads: the names worth injecting with wrong values.
    keys: tuple[str, ...]


def _request(path: str, query: str = "") -> RecordedRequest:
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    return RecordedRequest("POST", path, {}, body, 0.0, query)


def _renderer(dialect: Any, request: RecordedRequest) -> Callable[[Reply], tuple[bytes, ...]]:
    def render(reply: Reply) -> tuple[bytes, ...]:
        response = dialect.render_reply(reply, request, sequence=SEQUENCE, created=0)
        assert isinstance(response, StreamResponse)
        return response.events

    return render


WIRES = [
    Wire(
        "openai",
        _renderer(OpenAIChatDialect(), _request("/v1/chat/completions")),
        lambda: OpenAIStreamDecoder("openai", id_tag=TAG),
        keeps_cache_write=False,
        sends_ids=True,
        keys=(
            "error",
            "choices",
            "delta",
            "content",
            "tool_calls",
            "index",
            "id",
            "function",
            "name",
            "arguments",
            "finish_reason",
            "usage",
            "prompt_tokens",
            "completion_tokens",
            "prompt_tokens_details",
            "cached_tokens",
            "message",
            "type",
            "code",
        ),
    ),
    Wire(
        "anthropic",
        _renderer(AnthropicMessagesDialect(), _request("/v1/messages")),
        lambda: AnthropicStreamDecoder("anthropic", id_tag=TAG),
        keeps_cache_write=True,
        sends_ids=True,
        keys=(
            "type",
            "error",
            "message",
            "usage",
            "index",
            "content_block",
            "id",
            "name",
            "input",
            "text",
            "delta",
            "partial_json",
            "stop_reason",
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ),
    ),
    Wire(
        "gemini",
        _renderer(
            GeminiGenerateContentDialect(),
            _request("/v1beta/models/m:streamGenerateContent", "alt=sse"),
        ),
        lambda: GeminiStreamDecoder("gemini", id_tag=TAG),
        keeps_cache_write=False,
        sends_ids=False,
        keys=(
            "error",
            "code",
            "status",
            "message",
            "details",
            "retryDelay",
            "usageMetadata",
            "promptTokenCount",
            "candidatesTokenCount",
            "cachedContentTokenCount",
            "candidates",
            "index",
            "content",
            "parts",
            "text",
            "thought",
            "functionCall",
            "name",
            "args",
            "id",
            "thoughtSignature",
            "finishReason",
            "finishMessage",
            "promptFeedback",
            "blockReason",
            "blockReasonMessage",
        ),
    ),
    Wire(
        "openai_responses",
        _renderer(FakeResponsesDialect(), _request("/v1/responses")),
        lambda: ResponsesStreamDecoder("openai_responses", id_tag=TAG),
        keeps_cache_write=False,
        sends_ids=True,
        keys=(
            "type",
            "error",
            "code",
            "message",
            "response",
            "status",
            "incomplete_details",
            "reason",
            "usage",
            "input_tokens",
            "output_tokens",
            "input_tokens_details",
            "cached_tokens",
            "output_index",
            "item_id",
            "item",
            "id",
            "call_id",
            "name",
            "arguments",
            "delta",
            "summary",
            "summary_index",
            "encrypted_content",
            "content",
            "text",
        ),
    ),
]
BY_NAME = {wire.name: wire for wire in WIRES}
wires = pytest.mark.parametrize("wire", WIRES, ids=[wire.name for wire in WIRES])


# --- replies -------------------------------------------------------------------------------


@attrs.frozen
class Scenario:
    """A reply and what any decoder must make of it."""

    reply: Reply
    text: str
    calls: tuple[tuple[str, str, dict[str, Any]], ...]


_ids = st.text(min_size=1, max_size=10)


@st.composite
def scenarios(draw: st.DrawFn, wire: Wire) -> Scenario:
    texts = draw(st.lists(st.text(max_size=16), max_size=5))
    calls = draw(
        st.lists(
            st.tuples(_ids, st.text(min_size=1, max_size=10), json_objects),
            max_size=3,
            unique_by=lambda call: call[0],
        )
    )
    call_chunks = list(tool_call_chunks(calls, fragments=draw(st.integers(1, 6))))
    text_chunks = [TextChunk(text) for text in texts]
    # Interleave the two runs at random, each keeping its own order.
    chunks: list[TextChunk | ToolCallChunk] = []
    while text_chunks or call_chunks:
        source = call_chunks or text_chunks
        if text_chunks and call_chunks and draw(st.booleans()):
            source = text_chunks
        chunks.append(source.pop(0))
    usage = draw(st.none() | usages(wire))
    finish = draw(st.sampled_from([None, "stop", "length", "content_filter"]))
    reply = Reply(tuple(chunks), finish_reason=finish, usage=usage)
    return Scenario(reply, "".join(texts), tuple(calls))


def usages(wire: Wire) -> st.SearchStrategy[Usage]:
    """Counts the format can carry: Anthropic's prompt count is split into three parts."""
    counts = st.integers(0, 10**9)

    def build(read: int, write: int, extra: int, output: int) -> Usage:
        write = write if wire.keeps_cache_write else 0
        return Usage(read + write + extra, output, read, write)

    return st.builds(build, counts, counts, counts, counts)


def expected_finish(scenario: Scenario) -> FinishReason:
    reason = scenario.reply.finish_reason
    if reason == "length":
        return FinishReason.LENGTH
    if reason == "content_filter":
        return FinishReason.REFUSAL
    return FinishReason.TOOL_CALLS if scenario.calls else FinishReason.STOP


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def decode(wire: Wire, chunks: list[bytes]) -> list[ProviderEvent]:
    decoder = wire.decoder()
    with no_hang():
        events = [event for chunk in chunks for event in decoder.feed(chunk)]
        return events + decoder.close()


def check_well_formed(events: list[ProviderEvent]) -> None:
    """What a consumer relies on: known event types, one ``StreamEnd`` at most, and last."""
    for event in events:
        assert isinstance(event, TextDelta | StreamEnd), event
    ends = [i for i, event in enumerate(events) if isinstance(event, StreamEnd)]
    assert ends in ([], [len(events) - 1]), events


@FUZZ
@wires
@given(data=st.data())
def test_rendered_replies_decode_to_themselves(wire: Wire, data: st.DataObject) -> None:
    scenario = data.draw(scenarios(wire))
    raw = b"".join(wire.render(scenario.reply))
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=10))
    events = decode(wire, split(raw, cuts))
    check_well_formed(events)
    end = events[-1]
    assert isinstance(end, StreamEnd)

    texts = [event.text for event in events if isinstance(event, TextDelta)]
    assert "".join(texts) == end.text == scenario.text
    assert all(texts)  # no empty deltas

    assert len(end.tool_calls) == len(scenario.calls)
    for index, (call, (call_id, name, arguments)) in enumerate(
        zip(end.tool_calls, scenario.calls, strict=True)
    ):
        assert call.id == (call_id if wire.sends_ids else f"call_{TAG}_{index}")
        assert call.name == name
        assert json.loads(call.arguments) == arguments
        if wire.name == "gemini":  # the first call carries the turn's signature back
            assert call.signature == (thought_signature(SEQUENCE) if index == 0 else None)

    assert end.finish_reason is expected_finish(scenario)
    assert end.usage == scenario.reply.usage


# --- mutations -----------------------------------------------------------------------------

Event = tuple[str | None, str]  # (event field, data)


def parse_events(raw: bytes) -> list[Event]:
    """The rendered stream as (event, data) pairs, so payloads can be mutated as JSON."""
    decoder = SSEDecoder()
    sse = decoder.feed(raw) + decoder.close()
    return [(None if e.event == "message" else e.event, e.data) for e in sse]


def render_events(events: list[Event]) -> bytes:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name is not None else ""
        body = "".join(f"data: {line}\n" for line in data.split("\n"))
        out.append(f"{head}{body}\n")
    return "".join(out).encode("utf-8", "surrogatepass")


_garbage_lines = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
    st.sampled_from(
        [
            b"data: {not json",
            b"data: [DONE]",
            b"data: null",
            b"data: []",
            b"data: 1" + b"0" * 5000,  # more digits than Python's int() takes
            b'data: {"usage": {"prompt_tokens": 1' + b"0" * 5000 + b"}}",
            b"data: " + b"[" * 5_000,  # deeper than any recursive parser goes
            b"data: " + b'{"a":' * 5_000,
            b"event: error",
            b"event: message_stop",
            b": keep-alive",
            b"retry: 10",
            b"id: \x00",
            b"data: \xff\xfe",
            b"\xef\xbb\xbf",
            b"",
        ]
    ),
)


@st.composite
def mutated_streams(draw: st.DrawFn, wire: Wire) -> bytes:
    """A rendered stream broken in one to three ways, at the JSON, event or byte level."""
    scenario = draw(scenarios(wire))
    events = parse_events(b"".join(wire.render(scenario.reply)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["json", "error", "duplicate", "drop", "swap", "keep"]))
        if not events:
            break
        i = draw(st.integers(0, len(events) - 1))
        name, data = events[i]
        if kind == "json":
            value = json.loads(data) if data != "[DONE]" else {}
            value = draw(mutated_json(value, wire.keys, hostile_values))
            events[i] = (name, json.dumps(value, ensure_ascii=False))
        elif kind == "error":
            error = draw(hostile_values | st.fixed_dictionaries({}, optional=_error_fields))
            events[i] = (draw(st.sampled_from([name, "error"])), json.dumps({"error": error}))
        elif kind == "duplicate":
            events.insert(i, events[i])
        elif kind == "drop":
            del events[i]
        elif kind == "swap":
            j = draw(st.integers(0, len(events) - 1))
            events[i], events[j] = events[j], events[i]
    raw = bytearray(render_events(events))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert"]))
        position = draw(st.integers(0, len(raw)))
        if kind == "truncate":
            del raw[position:]
        elif kind == "flip" and position < len(raw):
            raw[position] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            line = draw(_garbage_lines)
            eol = draw(st.sampled_from([b"\n", b"\r\n", b"\n\n"]))
            raw[position:position] = line + eol
    return bytes(raw)


_error_fields = {
    "message": hostile_values,
    "type": hostile_values,
    "code": hostile_values,
    "status": hostile_values,
    "details": hostile_values,
}


def decode_mutated(wire: Wire, chunks: list[bytes]) -> None:
    try:
        events = decode(wire, chunks)
    except ProviderError as error:
        assert error.provider == wire.name
        assert "\n" not in str(error)  # one line a user can act on
        return
    check_well_formed(events)


@FUZZ
@wires
@given(data=st.data())
def test_mutated_streams_only_raise_provider_errors(wire: Wire, data: st.DataObject) -> None:
    raw = data.draw(mutated_streams(wire))
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    decode_mutated(wire, split(raw, cuts))


@FUZZ
@wires
@example(raw=b"data: " + b"[" * 5_000 + b"\n\n")
@example(raw=b'data: {"error": {"status": []}}\n\n')
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_provider_errors(wire: Wire, raw: bytes) -> None:
    decode_mutated(wire, [raw])


@FUZZ
@wires
@given(
    error=hostile_values | st.dictionaries(st.sampled_from(sorted(_error_fields)), hostile_values),
    event=st.sampled_from([None, "error"]),
    typed=st.booleans(),
)
def test_error_events_of_any_shape_only_raise_provider_errors(
    wire: Wire, error: Any, event: str | None, typed: bool
) -> None:
    """An in-stream error whose fields have any type still becomes a ``ProviderError``."""
    payload = {"type": "error", "error": error} if typed else {"error": error}
    with pytest.raises(ProviderError):
        decode(wire, [render_events([(event, json.dumps(payload))])])


@FUZZ
@wires
@given(chunks=st.lists(hostile_values | json_values, max_size=6), event=st.none() | st.text())
def test_arbitrary_json_events_only_raise_provider_errors(
    wire: Wire, chunks: list[Any], event: str | None
) -> None:
    """Each event a well-formed JSON value of any shape, named anything."""
    raw = render_events([(event or None, json.dumps(chunk)) for chunk in chunks])
    decode_mutated(wire, [raw])


_DIALECTS = {
    "openai": OpenAIDialect("http://127.0.0.1:1/v1"),
    "anthropic": AnthropicDialect("http://127.0.0.1:1/v1"),
    "gemini": GeminiDialect("http://127.0.0.1:1/v1beta"),
    "openai_responses": OpenAIResponsesDialect("http://127.0.0.1:1/v1"),
}
_bodies = st.one_of(
    st.binary(max_size=200),
    (hostile_values | json_values).map(lambda value: json.dumps({"error": value}).encode()),
    st.sampled_from(
        [
            b'{"error": ' + b"[" * 5_000,
            b'{"error": {"message": 1' + b"0" * 5_000 + b"}}",
            b'[{"error": {"details": [{"retryDelay": "1e400s"}]}}]',
        ]
    ),
)


@FUZZ
@wires
@given(
    status=st.integers(100, 599),
    body=_bodies,
    retry_after=st.none() | st.text(max_size=30) | st.sampled_from(["1e400", "-1", "nan", "inf"]),
)
def test_error_responses_always_become_provider_errors(
    wire: Wire, status: int, body: bytes, retry_after: str | None
) -> None:
    """``parse_error`` turns any HTTP error response into one ``ProviderError``."""
    headers = {} if retry_after is None else {"retry-after": retry_after}
    with no_hang():
        error = _DIALECTS[wire.name].parse_error(status, headers, body)
    assert isinstance(error, ProviderError)
    assert error.status == status
    assert "\n" not in str(error)
    assert error.retry_after is None or error.retry_after >= 0
