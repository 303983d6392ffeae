"""What the fake LLM says, independent of any provider's wire format.

A test writes one ``Script`` of ``Reply`` and ``HttpError`` values; each provider renderer
(OpenAI today, Anthropic and Gemini later) turns the same script into its own bytes, so one
scenario exercises every dialect. Fault injection (drops, stalls, malformed data) lives here too
because it is part of the scenario, not of the format.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias, TypedDict, Unpack

import attrs

from openheim.foundation.models import Usage

DEFAULT_USAGE = Usage(input_tokens=10, output_tokens=5)

_non_negative_int = attrs.validators.optional(
    [attrs.validators.instance_of(int), attrs.validators.ge(0)]
)


@attrs.frozen
class RecordedRequest:
    """One request as the server received it; ``headers`` keys are lower-case.

    Defined with the script because a script may answer by looking at the request.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    query: str = ""


@attrs.frozen
class TextChunk:
    """A piece of assistant text; one streamed chunk."""

    text: str


@attrs.frozen
class ToolCallChunk:
    """A fragment of tool call ``index``; one streamed chunk.

    As in OpenAI streams, the first fragment of a call brings ``id`` and ``name`` and later ones
    only more ``arguments`` text, which the client concatenates per ``index``.
    """

    index: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@attrs.frozen
class ThinkingChunk:
    """A piece of the model's visible thinking; one streamed chunk, rendered in each format's
    words (Anthropic ``thinking_delta``, OpenAI-compatible ``reasoning_content``, Gemini
    ``thought: true`` parts). Script them before the text, as models think first."""

    text: str


@attrs.frozen
class RedactedThinking:
    """An Anthropic ``redacted_thinking`` block (encrypted ``data``); the other formats have
    nothing like it and leave it out."""

    data: str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"


Chunk: TypeAlias = TextChunk | ToolCallChunk | ThinkingChunk | RedactedThinking


class ReplyOptions(TypedDict, total=False):
    """The keyword options every ``Reply`` convenience constructor passes through."""

    finish_reason: str | None
    usage: Usage | None
    chunk_delay: float
    drop_after: int | None
    stall_after: int | None
    malformed_after: int | None
    omit_done: bool


@attrs.frozen
class Reply:
    """A successful streamed answer, with optional faults.

    Fault positions count *events* of the rendered stream from its start: first one per chunk,
    then the finish event, the usage event (when sent) and the end marker (OpenAI's
    ``[DONE]``). A position past the end means "after the last event".

    - ``chunk_delay``: seconds slept before each event (also before the first: latency).
    - ``drop_after=n``: send ``n`` events, then close the connection mid-body.
    - ``stall_after=n``: send ``n`` events, then send nothing until the client leaves or the
      server shuts down.
    - ``malformed_after=n``: after ``n`` events insert ``data: {not json`` and go on.
    - ``omit_done``: leave out the end marker, as some servers do.
    - ``usage=None``: send no usage even when the request asked for it.
    """

    chunks: tuple[Chunk, ...] = attrs.field(converter=tuple)
    finish_reason: str | None = None
    usage: Usage | None = DEFAULT_USAGE
    chunk_delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    drop_after: int | None = attrs.field(default=None, validator=_non_negative_int)
    stall_after: int | None = attrs.field(default=None, validator=_non_negative_int)
    malformed_after: int | None = attrs.field(default=None, validator=_non_negative_int)
    omit_done: bool = False

    @property
    def effective_finish_reason(self) -> str:
        """``finish_reason``, or what a real model would say for these chunks."""
        if self.finish_reason is not None:
            return self.finish_reason
        if any(isinstance(chunk, ToolCallChunk) for chunk in self.chunks):
            return "tool_calls"
        return "stop"

    @property
    def thinking(self) -> str:
        """The visible thinking of this reply, joined."""
        return "".join(chunk.text for chunk in self.chunks if isinstance(chunk, ThinkingChunk))

    @classmethod
    def text(
        cls,
        text: str,
        *,
        pieces: int = 3,
        thinking: str | None = None,
        **options: Unpack[ReplyOptions],
    ) -> Reply:
        """A text answer streamed in about ``pieces`` chunks, after any ``thinking``."""
        return cls((*thinking_chunks(thinking), *text_chunks(text, pieces)), **options)

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: Mapping[str, Any] | str,
        *,
        id: str = "call_1",
        fragments: int = 4,
        text: str | None = None,
        thinking: str | None = None,
        **options: Unpack[ReplyOptions],
    ) -> Reply:
        """One tool call, optionally after some ``text`` (streamed as one chunk)."""
        return cls.tool_calls(
            [(id, name, arguments)], fragments=fragments, text=text, thinking=thinking, **options
        )

    @classmethod
    def tool_calls(
        cls,
        calls: Sequence[tuple[str, str, Mapping[str, Any] | str]],
        *,
        fragments: int = 4,
        text: str | None = None,
        thinking: str | None = None,
        **options: Unpack[ReplyOptions],
    ) -> Reply:
        """Parallel tool calls ``(id, name, arguments)``, their fragments interleaved, after
        any ``thinking`` and ``text``."""
        prefix = (*thinking_chunks(thinking), *(text_chunks(text, 1) if text else ()))
        return cls((*prefix, *tool_call_chunks(calls, fragments=fragments)), **options)


def _json_body_validator(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, dict | str):
        raise TypeError(f"{attribute.name} must be a dict, a str or None, got {value!r}")


ErrorBody: TypeAlias = dict[str, Any] | str | None


@attrs.frozen
class HttpError:
    """An error response instead of a stream.

    ``body=None`` lets the renderer write the provider's usual error JSON; a ``dict`` is sent
    as JSON and a ``str`` as plain text (what a proxy in front of a provider might send).
    ``retry_after`` (seconds) becomes a ``Retry-After`` header.
    """

    status: int = attrs.field(
        validator=[
            attrs.validators.instance_of(int),
            attrs.validators.ge(200),
            attrs.validators.le(599),
        ]
    )
    body: ErrorBody = attrs.field(default=None, validator=_json_body_validator)
    headers: dict[str, str] = attrs.field(factory=dict)
    retry_after: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0))
    )


Response: TypeAlias = Reply | HttpError


@attrs.define
class Script:
    """The queue of responses, consumed one per model request, in order.

    It is mutable on purpose: a test may ``append`` the next answer after seeing a request.
    With ``repeat`` the queue starts over when it runs out (for benchmarks).
    """

    _responses: list[Response] = attrs.field(factory=list, converter=list)
    repeat: bool = attrs.field(default=False, kw_only=True)
    _position: int = attrs.field(default=0, init=False)
    consumed: int = attrs.field(default=0, init=False)

    def append(self, *responses: Response) -> None:
        self._responses.extend(responses)

    def extend(self, responses: Iterable[Response]) -> None:
        self._responses.extend(responses)

    @property
    def remaining(self) -> int:
        """How many responses are left before the script is exhausted (repeat: this round)."""
        return len(self._responses) - self._position

    def respond_to(self, request: RecordedRequest) -> Response | None:
        """The response the server sends to ``request``: the next one, unless a subclass
        looks at the request (to answer many concurrent conversations consistently)."""
        return self.next_response()

    def next_response(self) -> Response | None:
        """Take the next response; ``None`` when the script is exhausted."""
        if self._position >= len(self._responses):
            if not (self.repeat and self._responses):
                return None
            self._position = 0
        response = self._responses[self._position]
        self._position += 1
        self.consumed += 1
        return response


def split_evenly(text: str, pieces: int) -> list[str]:
    """Split ``text`` into at most ``pieces`` non-empty parts of nearly equal length."""
    if not text:
        return []
    count = max(1, min(pieces, len(text)))
    bounds = [round(i * len(text) / count) for i in range(count + 1)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


def text_chunks(text: str, pieces: int = 3) -> tuple[TextChunk, ...]:
    return tuple(TextChunk(part) for part in split_evenly(text, pieces))


def thinking_chunks(text: str | None, pieces: int = 2) -> tuple[ThinkingChunk, ...]:
    return tuple(ThinkingChunk(part) for part in split_evenly(text or "", pieces))


def tool_call_chunks(
    calls: Sequence[tuple[str, str, Mapping[str, Any] | str]], *, fragments: int = 4
) -> tuple[ToolCallChunk, ...]:
    """Chunks for calls ``(id, name, arguments)``: a header each, then argument fragments.

    A ``str`` ``arguments`` is sent verbatim (it may be invalid JSON on purpose). Fragments of
    different calls are interleaved round-robin so clients must assemble by ``index``.
    """
    per_call: list[list[ToolCallChunk]] = []
    for index, (call_id, name, arguments) in enumerate(calls):
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        header = ToolCallChunk(index, call_id, name, "")
        pieces = [ToolCallChunk(index, None, None, part) for part in split_evenly(text, fragments)]
        per_call.append([header, *pieces])
    interleaved: list[ToolCallChunk] = []
    for position in range(max((len(chunks) for chunks in per_call), default=0)):
        interleaved.extend(chunks[position] for chunks in per_call if position < len(chunks))
    return tuple(interleaved)
