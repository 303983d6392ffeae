"""The JSON bodies of ``/api/sessions``, built key by key as OPENHEIM_SPEC.md §7 documents them.

They are the API's own models, not the history document: the storage codec may rename or
regroup what it writes, and clients still get these shapes. The views are read from the
session layer's ``ConversationMeta`` and ``Transcript``; the ``*_json`` functions give the
exact objects clients receive (keys in the documented order, optional ones left out when
unset).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import attrs

from openheim.foundation.models import Message, ToolCall, Usage
from openheim.session import ConversationMeta, Transcript

#: A JSON object as ``json.dumps`` takes it.
JsonObject = dict[str, object]


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``, as the spec promises."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@attrs.frozen
class UsageView:
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int

    @classmethod
    def of(cls, usage: Usage) -> UsageView:
        return cls(
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
        )


@attrs.frozen
class MetaView:
    """One session in ``GET /api/sessions`` (and the ``meta`` of a transcript)."""

    id: str
    created_at: datetime
    updated_at: datetime
    skills: tuple[str, ...]
    usage: UsageView
    model: str | None = None
    provider: str | None = None
    title: str | None = None
    cwd: str | None = None
    cost_usd: float | None = None

    @classmethod
    def of(cls, meta: ConversationMeta) -> MetaView:
        return cls(
            id=meta.id,
            created_at=meta.created_at,
            updated_at=meta.updated_at,
            skills=meta.skills,
            usage=UsageView.of(meta.usage),
            model=meta.model,
            provider=meta.provider,
            title=meta.title,
            cwd=meta.cwd,
            cost_usd=meta.cost_usd,
        )


@attrs.frozen
class ToolCallView:
    id: str
    name: str
    arguments: str
    signature: str | None = None

    @classmethod
    def of(cls, call: ToolCall) -> ToolCallView:
        return cls(call.id, call.name, call.arguments, call.signature)


@attrs.frozen
class MessageView:
    """An OpenAI-shaped message, what clients already render."""

    role: str
    content: str | None
    tool_calls: tuple[ToolCallView, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False

    @classmethod
    def of(cls, message: Message) -> MessageView:
        return cls(
            role=message.role.value,
            content=message.content,
            tool_calls=tuple(ToolCallView.of(call) for call in message.tool_calls),
            tool_call_id=message.tool_call_id,
            tool_name=message.tool_name,
            is_error=message.is_error,
        )


@attrs.frozen
class TranscriptView:
    """``GET /api/sessions/{id}``."""

    meta: MetaView
    messages: tuple[MessageView, ...]

    @classmethod
    def of(cls, transcript: Transcript) -> TranscriptView:
        return cls(MetaView.of(transcript.meta), tuple(map(MessageView.of, transcript.messages)))


# --- to JSON ---------------------------------------------------------------------------------


def _put(body: JsonObject, key: str, value: object) -> None:
    """Set ``key`` unless ``value`` is unset: the spec leaves such keys out."""
    if value is not None:
        body[key] = value


def usage_json(usage: UsageView) -> JsonObject:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    }


def meta_json(meta: MetaView) -> JsonObject:
    body: JsonObject = {
        "id": meta.id,
        "created_at": timestamp(meta.created_at),
        "updated_at": timestamp(meta.updated_at),
        "skills": list(meta.skills),
        "usage": usage_json(meta.usage),
    }
    _put(body, "model", meta.model)
    _put(body, "provider", meta.provider)
    _put(body, "title", meta.title)
    _put(body, "cwd", meta.cwd)
    _put(body, "cost_usd", meta.cost_usd)
    return body


def tool_call_json(call: ToolCallView) -> JsonObject:
    body: JsonObject = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    _put(body, "signature", call.signature)
    return body


def message_json(message: MessageView) -> JsonObject:
    body: JsonObject = {"role": message.role, "content": message.content}
    if message.tool_calls:
        body["tool_calls"] = [tool_call_json(call) for call in message.tool_calls]
    _put(body, "tool_call_id", message.tool_call_id)
    _put(body, "tool_name", message.tool_name)
    if message.is_error:
        body["is_error"] = True
    return body


def sessions_json(metas: Iterable[ConversationMeta]) -> list[JsonObject]:
    """The body of ``GET /api/sessions``."""
    return [meta_json(MetaView.of(meta)) for meta in metas]


def transcript_json(transcript: Transcript) -> JsonObject:
    """The body of ``GET /api/sessions/{id}``."""
    view = TranscriptView.of(transcript)
    return {"meta": meta_json(view.meta), "messages": [message_json(m) for m in view.messages]}
