"""The one internal representation of conversations; providers convert at their edge.

Value types are frozen ``attrs`` classes. ``Conversation`` is the exception: a session owns
exactly one and appends to it as the turn goes on.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from datetime import UTC, datetime
from typing import Any

import attrs

from openheim.foundation.errors import ImageError


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@attrs.frozen
class ToolCall:
    """A call the model asked for; ``arguments`` is the raw JSON text the model produced.

    The raw text is kept (not a parsed dict) because a model may produce invalid JSON, and
    both the history and the next request must show the model exactly what it said.
    """

    id: str
    name: str
    arguments: str = "{}"
    #: Opaque provider data that must go back with the call unchanged (Gemini's
    #: ``thoughtSignature``); ``None`` for providers that have none.
    signature: str | None = None

    def parsed_arguments(self) -> dict[str, Any]:
        """Parse ``arguments``; raise ``ValueError`` with a message fit for the model."""
        text = self.arguments.strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"arguments are not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
        if not isinstance(value, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
        return value


#: The image types every supported provider takes.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: The largest image sent to a model (Anthropic's per-image limit; the others allow more).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: The most images one message (a prompt, a tool result) may carry.
MAX_IMAGES = 20


@attrs.frozen
class ImagePart:
    """An image in a message, as base64 text: the form every provider takes it in, so it is
    stored and sent without decoding."""

    mime_type: str
    data: str = attrs.field(repr=lambda data: f"<{len(data)} base64 chars>")

    @property
    def size(self) -> int:
        """The decoded size in bytes."""
        return len(self.data) * 3 // 4 - self.data[-2:].count("=")


def check_image(mime_type: str, data: str) -> ImagePart:
    """An image fit to send to a model, or ``ImageError`` saying why not."""
    kind = mime_type.strip().lower()
    if kind == "image/jpg":
        kind = "image/jpeg"
    if kind not in IMAGE_TYPES:
        names = ", ".join(t.removeprefix("image/").upper() for t in IMAGE_TYPES)
        raise ImageError(f"{mime_type or 'no type'} is not an image type models take ({names})")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"the {kind} image's data is not valid base64") from None
    if not raw:
        raise ImageError(f"the {kind} image is empty")
    if len(raw) > MAX_IMAGE_BYTES:
        raise ImageError(
            f"the {kind} image is {_megabytes(len(raw))}, over the "
            f"{_megabytes(MAX_IMAGE_BYTES)} limit; fix: send a smaller or scaled-down image"
        )
    return ImagePart(kind, data)


def check_image_count(count: int) -> None:
    if count > MAX_IMAGES:
        raise ImageError(
            f"{count} images in one message, over the limit of {MAX_IMAGES}; "
            "fix: send fewer images at a time"
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


@attrs.frozen
class Prompt:
    """What a user sends: text, and images when the client has any (a pasted screenshot)."""

    text: str
    images: tuple[ImagePart, ...] = ()


@attrs.frozen
class ToolDefinition:
    name: str
    description: str
    parameters: dict[str, Any] = attrs.field(factory=lambda: {"type": "object", "properties": {}})


@attrs.frozen
class FileDiff:
    """A file a tool changed, for clients that draw diffs; ``path`` is absolute and
    ``old_text`` None for a file the tool created."""

    path: str
    old_text: str | None
    new_text: str


@attrs.frozen
class Location:
    """A file (absolute path) and, when known, a 1-based line a tool looked at or changed."""

    path: str
    line: int | None = None


@attrs.frozen
class ToolResult:
    """What a tool returns. ``content`` is all the model sees, and what results compare by;
    ``diffs`` and ``locations`` are for the faces (an editor's diff view, a terminal's coloured
    diff) and are not stored in the history."""

    content: str
    is_error: bool = False
    #: Images the tool returned (an MCP screenshot tool), sent to the model with the text.
    images: tuple[ImagePart, ...] = ()
    diffs: tuple[FileDiff, ...] = attrs.field(default=(), eq=False)
    locations: tuple[Location, ...] = attrs.field(default=(), eq=False)


@attrs.frozen
class Usage:
    """Token counts normalised across providers.

    ``input_tokens`` counts every prompt token, cached or not; ``cache_read_tokens`` and
    ``cache_write_tokens`` say how many of them hit or filled a provider cache.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class ReasoningLevel(enum.StrEnum):
    """How hard a model is asked to think before it answers (``reasoning`` in the config)."""

    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@attrs.frozen
class Reasoning:
    """What a model thought before its answer: text for people, blocks for the provider.

    ``blocks`` is the provider's own record of the thinking (Anthropic's signed ``thinking``
    and encrypted ``redacted_thinking`` blocks, Gemini's ``thought`` parts) as JSON text of a
    list, kept opaque because the provider checks it and wants it back unchanged. It goes
    back only to the wire ``format`` that produced it; other providers get nothing.
    """

    text: str = ""
    format: str = ""
    blocks: str = ""

    def provider_blocks(self, format: str) -> list[dict[str, Any]]:
        """The blocks to send back to a provider speaking ``format``; none for another."""
        if format != self.format or not self.blocks:
            return []
        try:
            value = json.loads(self.blocks)
        except ValueError:
            return []
        return (
            [block for block in value if isinstance(block, dict)] if isinstance(value, list) else []
        )


@attrs.frozen
class Message:
    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    #: Images of a user prompt or a tool result; each provider encodes them its own way.
    images: tuple[ImagePart, ...] = ()
    #: The thinking behind an assistant message, when the model showed any.
    reasoning: Reasoning | None = None

    @classmethod
    def system(cls, text: str) -> Message:
        return cls(Role.SYSTEM, text)

    @classmethod
    def user(cls, prompt: str | Prompt) -> Message:
        if isinstance(prompt, Prompt):
            return cls(Role.USER, prompt.text, images=prompt.images)
        return cls(Role.USER, prompt)

    @classmethod
    def assistant(
        cls,
        text: str | None,
        tool_calls: tuple[ToolCall, ...] = (),
        reasoning: Reasoning | None = None,
    ) -> Message:
        return cls(Role.ASSISTANT, text or None, tuple(tool_calls), reasoning=reasoning)

    @classmethod
    def tool(cls, call: ToolCall, result: ToolResult) -> Message:
        return cls(
            Role.TOOL,
            result.content,
            tool_call_id=call.id,
            tool_name=call.name,
            is_error=result.is_error,
            images=result.images,
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


TITLE_LENGTH = 80


def title_of(prompt: str) -> str | None:
    """A conversation's title: its first prompt's first non-blank line, trimmed."""
    for line in prompt.splitlines():
        if line.strip():
            return " ".join(line.split())[:TITLE_LENGTH]
    return None


class CompactionMethod(enum.StrEnum):
    """The step of the compaction ladder that made a record (the cheapest that was enough)."""

    ELIDE = "elide"
    SUMMARY = "summary"
    DROP = "drop"
    TRUNCATE = "truncate"


@attrs.frozen
class Compaction:
    """How the model's view of a conversation differs from its transcript.

    The transcript keeps every message; the view replaces ``messages[:upto]`` with one note
    (the ``summary`` when there is one, else a note that ``dropped`` messages were removed),
    shows the tool outputs at the indexes in ``elided`` as short stubs, and cuts each message
    in ``truncated`` (index, characters kept) to fit. A record is whole, so the view follows
    from the latest one alone; the earlier ones say where compaction happened (replay).
    """

    #: How many messages the transcript held when the compaction was made.
    at: int
    method: CompactionMethod
    tokens_before: int
    tokens_after: int
    upto: int = 0
    summary: str | None = None
    #: Of the ``upto`` messages replaced, how many no summary covers.
    dropped: int = 0
    elided: tuple[int, ...] = ()
    truncated: tuple[tuple[int, int], ...] = ()
    #: Stored to the millisecond; records compare by what they say, not by when.
    created_at: datetime = attrs.field(factory=utc_now, eq=False)


@attrs.define
class Conversation:
    id: str
    created_at: datetime = attrs.field(factory=utc_now)
    updated_at: datetime = attrs.field(factory=utc_now)
    model: str | None = None
    provider: str | None = None
    title: str | None = None
    skills: tuple[str, ...] = ()
    cwd: str | None = None
    messages: list[Message] = attrs.field(factory=list)
    usage: Usage = attrs.field(factory=Usage)
    #: Known only when the config has prices for every model the conversation used.
    cost_usd: float | None = None
    #: Every compaction of the model's view, oldest first (``openheim.agent.compaction``);
    #: the latest says what the model sees, ``messages`` stays the full transcript.
    compactions: list[Compaction] = attrs.field(factory=list)

    def record_usage(self, usage: Usage, cost_usd: float | None) -> None:
        """Add a turn's usage; the cost stays known only while every turn's cost was known."""
        if usage == Usage():
            return
        first = self.usage == Usage()
        self.usage += usage
        if first:
            self.cost_usd = cost_usd
        elif self.cost_usd is not None and cost_usd is not None:
            self.cost_usd += cost_usd
        else:
            self.cost_usd = None

    def append(self, message: Message) -> None:
        self.messages.append(message)
        self.updated_at = utc_now()
        if self.title is None and message.role is Role.USER and message.content:
            self.title = title_of(message.content)

    def unanswered_tool_calls(self) -> list[ToolCall]:
        """Tool calls of the last assistant message that have no result yet."""
        for index in range(len(self.messages) - 1, -1, -1):
            message = self.messages[index]
            if message.role is Role.ASSISTANT:
                answered = {m.tool_call_id for m in self.messages[index + 1 :]}
                return [call for call in message.tool_calls if call.id not in answered]
        return []
