"""The Anthropic Messages wire format (sans-IO).

Anthropic differs from OpenAI in ways that shape this module: the system prompt is a top-level
field, roles must alternate (so consecutive messages of one role merge), tool results are
blocks inside a *user* message, ``max_tokens`` is required, tool input streams as JSON
fragments per content block, and ``input_tokens`` excludes cached prompt tokens.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import ImagePart, Message, Role, ToolCall, ToolDefinition, Usage
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    HttpRequest,
    ProviderEvent,
    StreamEnd,
    TextDelta,
)
from openheim.providers.http import (
    error_message_from_body,
    is_retryable_status,
    retry_after_from_headers,
    truncate,
)
from openheim.providers.marked import MarkedStreamDecoder
from openheim.providers.sse import SSEEvent

DEFAULT_API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

_STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "tool_use": FinishReason.TOOL_CALLS,
    "max_tokens": FinishReason.LENGTH,
    "refusal": FinishReason.REFUSAL,
}
RETRYABLE_ERROR_TYPES = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
)
#: What an empty failed tool result says: the API rejects an error ``tool_result`` without
#: content, and the model still needs to learn that the call failed.
EMPTY_ERROR_RESULT = "(the tool failed without output)"
_QUOTE_LIMIT = 200


def _strip_trailing_slash(url: str) -> str:
    return url.rstrip("/")


@attrs.frozen
class AnthropicDialect:
    """Messages API for one configured provider (``api_base`` like ``https://…/v1``).

    ``default_max_tokens`` fills the field the API requires when the request leaves it open.
    """

    api_base: str = attrs.field(converter=_strip_trailing_slash)
    provider_name: str = "anthropic"
    default_max_tokens: int = attrs.field(
        default=DEFAULT_MAX_TOKENS, validator=attrs.validators.gt(0)
    )
    api_version: str = DEFAULT_API_VERSION

    @property
    def name(self) -> str:
        return self.provider_name

    def build_request(self, request: ChatRequest, api_key: str | None) -> HttpRequest:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "anthropic-version": self.api_version,
        }
        if api_key:
            headers["x-api-key"] = api_key
        max_tokens = request.max_tokens
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": self.default_max_tokens if max_tokens is None else max_tokens,
            "stream": True,
        }
        system = system_text(request.messages)
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [tool_to_anthropic(tool) for tool in request.tools]
        body["messages"] = messages_to_anthropic(request.messages)
        return HttpRequest("POST", f"{self.api_base}/messages", headers, body)

    def new_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(self.provider_name)

    def parse_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> ProviderError:
        """``now`` only matters for an HTTP-date ``Retry-After``; default is the current time."""
        kind, message = _anthropic_error(body)
        if message is None:
            message = error_message_from_body(status, body)
        elif kind:
            message = truncate(f"{kind}: {message}", 500)
        return ProviderError(
            message,
            provider=self.provider_name,
            status=status,
            retryable=is_retryable_status(status) or kind in RETRYABLE_ERROR_TYPES,
            retry_after=retry_after_from_headers(headers, now=now),
        )


# --- requests ------------------------------------------------------------------------------


def system_text(messages: tuple[Message, ...]) -> str:
    """Every system message's text, joined: the API has one top-level ``system`` field."""
    return "\n\n".join(
        m.content for m in messages if m.role is Role.SYSTEM and m.content and m.content.strip()
    )


def messages_to_anthropic(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Our messages as alternating ``user``/``assistant`` turns of content blocks.

    Consecutive messages of one role become one turn (the API requires alternation, and every
    ``tool_use`` needs its ``tool_result`` in the very next user turn); within a user turn the
    tool results go first. A message with nothing to send (empty text) adds no turn.
    """
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        blocks = message_blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            content = turn["content"]
            turn["content"] = [b for b in content if b["type"] == "tool_result"] + [
                b for b in content if b["type"] != "tool_result"
            ]
    return turns


def message_blocks(message: Message) -> list[dict[str, Any]]:
    """The content blocks of one message; never an empty text block (the API rejects it)."""
    if message.role is Role.TOOL:
        return [tool_result_block(message)]
    blocks: list[dict[str, Any]] = []
    if _has_text(message.content):
        blocks.append({"type": "text", "text": message.content})
    if message.role is Role.ASSISTANT:
        blocks.extend(tool_use_block(call) for call in message.tool_calls)
    blocks.extend(image_block(image) for image in message.images)
    return blocks


def image_block(image: ImagePart) -> dict[str, Any]:
    """An ``image`` block with the base64 data inline; also valid inside a ``tool_result``."""
    source = {"type": "base64", "media_type": image.mime_type, "data": image.data}
    return {"type": "image", "source": source}


def tool_result_content(message: Message) -> list[dict[str, Any]]:
    """A tool result with images: its text (if any) and the images, as content blocks."""
    text = [{"type": "text", "text": message.content}] if _has_text(message.content) else []
    return [*text, *(image_block(image) for image in message.images)]


def tool_use_block(call: ToolCall) -> dict[str, Any]:
    """``input`` must be an object; invalid JSON (the model's earlier mistake) becomes ``{}``.

    The tool result that follows already told the model its arguments were unusable, so
    failing the whole request here would only stop the conversation.
    """
    try:
        arguments = call.parsed_arguments()
    except ValueError:
        arguments = {}
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def tool_result_block(message: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
    if message.images:
        block["content"] = tool_result_content(message)
    elif message.content:
        block["content"] = message.content
    elif message.is_error:
        block["content"] = EMPTY_ERROR_RESULT
    if message.is_error:
        block["is_error"] = True
    return block


def tool_to_anthropic(tool: ToolDefinition) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def _has_text(text: str | None) -> bool:
    """The API rejects empty and whitespace-only text blocks."""
    return bool(text and text.strip())


# --- the stream ----------------------------------------------------------------------------


@attrs.define
class _ToolBlock:
    id: str
    name: str
    initial_input: Any = None  # a proxy may send the whole input in content_block_start
    fragments: list[str] = attrs.Factory(list)

    def build(self) -> ToolCall:
        arguments = "".join(self.fragments)
        if not arguments.strip() and isinstance(self.initial_input, dict) and self.initial_input:
            arguments = json.dumps(self.initial_input)
        return ToolCall(self.id, self.name, arguments if arguments.strip() else "{}")


_TEXT = "text"
_OTHER = "other"  # thinking, redacted_thinking, server tools: not shown as text (yet)


class AnthropicStreamDecoder(MarkedStreamDecoder):
    """Turns a Messages SSE body into ``TextDelta``s and one ``StreamEnd``.

    Blocks are tracked by the stream's block ``index``; tool calls get our own dense index.
    ``id_tag`` only makes ids synthesized for id-less ``tool_use`` blocks (odd proxies)
    unique beyond this stream; it is random by default.
    """

    END_MARKER = "message_stop"

    def __init__(self, provider_name: str = "anthropic", *, id_tag: str | None = None) -> None:
        super().__init__()
        self._provider = provider_name
        self._id_tag = id_tag if id_tag is not None else secrets.token_hex(4)
        self._text: list[str] = []
        self._blocks: dict[int, _ToolBlock | str] = {}  # stream index -> tool block or kind
        self._tools: list[_ToolBlock] = []
        self._current: int | None = None  # the last started block, for events without index
        self._stop_reason: str | None = None
        self._usage: dict[str, int] = {}

    def _stopped(self) -> bool:
        return self._stop_reason is not None

    # --- events ---------------------------------------------------------------------------

    def _handle_event(self, sse: SSEEvent, events: list[ProviderEvent]) -> None:
        data = sse.data
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            if sse.event == "error":
                raise self._error(" ".join(data.split()) or "error event") from None
            raise self._error(
                f"malformed JSON in stream: {truncate(data, _QUOTE_LIMIT)!r}"
            ) from None
        if not isinstance(payload, dict):
            raise self._error(f"unexpected stream event: {truncate(data, _QUOTE_LIMIT)!r}")
        kind = payload.get("type")
        if not isinstance(kind, str):
            kind = sse.event
        if kind == "error" or sse.event == "error":
            raise self._stream_error(payload.get("error", payload))
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                self._take_usage(message.get("usage"))
        elif kind == "content_block_start":
            self._start_block(payload, events)
        elif kind == "content_block_delta":
            self._block_delta(payload, events)
        elif kind == "message_delta":
            delta = payload.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if isinstance(reason, str) and reason:
                self._stop_reason = reason
            self._take_usage(payload.get("usage"))
        elif kind == "message_stop":
            events.append(self._end())
        # ping, content_block_stop and unknown types carry nothing we need.

    def _block_index(self, payload: dict[str, Any]) -> int | None:
        index = payload.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            return index
        return self._current

    def _start_block(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        index = self._block_index(payload)
        if index is None:
            index = max(self._blocks, default=-1) + 1
        self._current = index
        block = payload.get("content_block")
        if not isinstance(block, dict):
            block = {}
        kind = block.get("type")
        if kind == "tool_use":
            tool_index = len(self._tools)
            raw_id, raw_name = block.get("id"), block.get("name")
            call_id = (
                raw_id
                if isinstance(raw_id, str) and raw_id
                else f"toolu_{tool_index}_{self._id_tag}"
            )
            name = raw_name if isinstance(raw_name, str) else ""
            tool = _ToolBlock(call_id, name, block.get("input"))
            self._tools.append(tool)
            self._blocks[index] = tool
        elif kind == "text":
            self._blocks[index] = _TEXT
            text = block.get("text")
            if isinstance(text, str) and text:  # the API sends "", a proxy may not
                self._add_text(text, events)
        else:
            self._blocks[index] = _OTHER

    def _block_delta(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        index = self._block_index(payload)
        block = self._blocks.get(index) if index is not None else None
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            # A text delta for a block never started is still text; a thinking block's is not.
            if isinstance(text, str) and text and block in (_TEXT, None):
                self._add_text(text, events)
        elif kind == "input_json_delta" and isinstance(block, _ToolBlock):
            fragment = delta.get("partial_json")
            if isinstance(fragment, str) and fragment:
                block.fragments.append(fragment)
        # thinking_delta, signature_delta, citations_delta: not shown (yet).

    def _add_text(self, text: str, events: list[ProviderEvent]) -> None:
        self._text.append(text)
        events.append(TextDelta(text))

    def _take_usage(self, usage: Any) -> None:
        """Keep the latest count of each field; ``output_tokens`` is cumulative."""
        if not isinstance(usage, dict):
            return
        for field in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            value = usage.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self._usage[field] = value

    # --- the end --------------------------------------------------------------------------

    def _end(self) -> StreamEnd:
        self._ended = True
        calls = tuple(tool.build() for tool in self._tools)
        return StreamEnd(
            text="".join(self._text),
            tool_calls=calls,
            finish_reason=_finish_reason(self._stop_reason, bool(calls)),
            usage=self._normalised_usage(),
        )

    def _normalised_usage(self) -> Usage | None:
        """Ours counts every prompt token; Anthropic's ``input_tokens`` excludes the cache."""
        if not self._usage:
            return None
        cache_read = self._usage.get("cache_read_input_tokens", 0)
        cache_write = self._usage.get("cache_creation_input_tokens", 0)
        return Usage(
            input_tokens=self._usage.get("input_tokens", 0) + cache_read + cache_write,
            output_tokens=self._usage.get("output_tokens", 0),
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        )

    def _stream_error(self, error: Any) -> ProviderError:
        if isinstance(error, dict):
            raw_kind, raw_message = error.get("type"), error.get("message")
            kind = raw_kind if isinstance(raw_kind, str) else ""
            message = " ".join(str(raw_message).split()) if raw_message else ""
        else:
            kind, message = "", " ".join(str(error).split())
        text = f"{kind}: {message}" if kind and message else message or kind
        return self._error(
            truncate(text or "unknown error in stream", 500),
            retryable=kind in RETRYABLE_ERROR_TYPES,
        )

    def _error(self, message: str, *, retryable: bool = False) -> ProviderError:
        return ProviderError(message, provider=self._provider, retryable=retryable)


def _finish_reason(raw: str | None, has_calls: bool) -> FinishReason:
    """Normalise; assembled calls mean TOOL_CALLS unless the answer was cut off or refused."""
    reason = FinishReason.STOP if raw is None else _STOP_REASONS.get(raw, FinishReason.OTHER)
    if has_calls and reason not in (FinishReason.LENGTH, FinishReason.REFUSAL):
        return FinishReason.TOOL_CALLS
    return reason


def _anthropic_error(body: bytes) -> tuple[str, str | None]:
    """``(type, message)`` from ``{"type": "error", "error": {"type", "message"}}``."""
    try:
        payload = json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return "", None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return "", None
    kind, message = error.get("type"), error.get("message")
    kind = kind if isinstance(kind, str) else ""
    if not isinstance(message, str) or not message.strip():
        return kind, None
    return kind, " ".join(message.split())
