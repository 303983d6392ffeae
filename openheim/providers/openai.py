"""The OpenAI Chat Completions wire format (sans-IO), also spoken by Ollama, vLLM and LM Studio.

The decoder is lenient where compatible servers differ from OpenAI (missing ``index``, ``id``
or ``type``; whole calls in one chunk; reused indices; ``stop`` after tool calls) and strict
where leniency would hide a broken stream (bad JSON, no end marker).

Reasoning: a level other than ``off`` is sent as ``reasoning_effort`` (OpenAI's o-series and
GPT-5 take ``low``/``medium``/``high``; set it only for models that reason, as others reject
the field). The thinking that DeepSeek, vLLM and others stream as ``reasoning_content`` (or
``reasoning``) is decoded as thoughts; it is kept in the history for people but never sent
back, which these servers neither need nor, in DeepSeek's case, accept.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import (
    ImagePart,
    Message,
    Reasoning,
    ReasoningLevel,
    Role,
    ToolCall,
    ToolDefinition,
    Usage,
)
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    HttpRequest,
    ProviderEvent,
    StreamEnd,
    TextDelta,
    ThinkingDelta,
)
from openheim.providers.http import (
    api_base,
    http_error,
    is_retryable_status,
    token_count,
    truncate,
)
from openheim.providers.marked import MarkedStreamDecoder
from openheim.providers.sse import SSEEvent

MAX_TOKENS_FIELDS = ("max_completion_tokens", "max_tokens")
#: The ``Reasoning.format`` of thoughts from this dialect (they have nothing to send back).
REASONING_FORMAT = "openai-chat"
#: Where compatible servers stream thinking: DeepSeek and vLLM, then OpenRouter and Ollama.
REASONING_FIELDS = ("reasoning_content", "reasoning")

_FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.REFUSAL,
}
_RETRYABLE_ERROR_WORDS = ("rate_limit", "rate limit", "overloaded", "server_error", "unavailable")
_QUOTE_LIMIT = 200


@attrs.frozen
class OpenAIDialect:
    """Chat Completions for one configured provider.

    ``max_tokens_field`` exists because OpenAI deprecated ``max_tokens`` for
    ``max_completion_tokens`` while many compatible servers only know the old name.
    """

    api_base: str = attrs.field(converter=api_base)
    provider_name: str = "openai"
    max_tokens_field: str = attrs.field(
        default="max_completion_tokens", validator=attrs.validators.in_(MAX_TOKENS_FIELDS)
    )

    @property
    def name(self) -> str:
        return self.provider_name

    def build_request(self, request: ChatRequest, api_key: str | None) -> HttpRequest:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        body: dict[str, Any] = {
            "model": request.model,
            "messages": with_tool_images(
                [message_to_openai(message) for message in request.messages], request.messages
            ),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:  # vLLM rejects an empty list (and tool_choice without tools)
            body["tools"] = [tool_to_openai(tool) for tool in request.tools]
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.reasoning is not ReasoningLevel.OFF:
            body["reasoning_effort"] = request.reasoning.value
        return HttpRequest("POST", f"{self.api_base}/chat/completions", headers, body)

    def new_decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(self.provider_name)

    def parse_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> ProviderError:
        """``now`` only matters for an HTTP-date ``Retry-After``; default is the current time."""
        return http_error(self.provider_name, status, headers, body, now=now)


def message_to_openai(message: Message) -> dict[str, Any]:
    """One of our messages in OpenAI's shape, with no extra fields (OpenAI rejects them)."""
    if message.role is Role.ASSISTANT:
        out: dict[str, Any] = {"role": "assistant"}
        # OpenAI requires content unless there are tool calls; then null is the norm.
        out["content"] = message.content or (None if message.tool_calls else "")
        if message.tool_calls:
            out["tool_calls"] = [tool_call_to_openai(call) for call in message.tool_calls]
        return out
    if message.role is Role.TOOL:
        # ``is_error`` has no place in this format; the content already says what went wrong.
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content or "",
        }
    if message.images:
        return {"role": message.role.value, "content": user_parts_to_openai(message)}
    return {"role": message.role.value, "content": message.content or ""}


# --- images ---------------------------------------------------------------------------------


def image_to_openai(image: ImagePart) -> dict[str, Any]:
    """An ``image_url`` content part holding the image as a data URL."""
    return {
        "type": "image_url",
        "image_url": {"url": f"data:{image.mime_type};base64,{image.data}"},
    }


def user_parts_to_openai(message: Message) -> list[dict[str, Any]]:
    """A message's text and images as content parts (text first, when there is any)."""
    text = [{"type": "text", "text": message.content}] if message.content else []
    return [*text, *(image_to_openai(image) for image in message.images)]


def with_tool_images(
    encoded: list[dict[str, Any]], messages: Sequence[Message]
) -> list[dict[str, Any]]:
    """``encoded`` (one entry per message) plus a user message after each run of tool results
    that had images: a ``tool`` message holds text only, and a user message in the middle of
    the run would break the rule that every call's result follows its assistant message."""
    out: list[dict[str, Any]] = []
    pending: list[Message] = []
    for message, entry in zip(messages, encoded, strict=True):
        if message.role is not Role.TOOL and pending:
            out.append(tool_images_message(pending))
            pending = []
        out.append(entry)
        if message.role is Role.TOOL and message.images:
            pending.append(message)
    if pending:
        out.append(tool_images_message(pending))
    return out


def tool_images_message(results: Sequence[Message]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for result in results:
        count = len(result.images)
        label = f"{count} image{'s' if count > 1 else ''}"
        intro = f"[{label} from the result of {result.tool_name} ({result.tool_call_id})]"
        parts.append({"type": "text", "text": intro})
        parts.extend(image_to_openai(image) for image in result.images)
    return {"role": "user", "content": parts}


def tool_call_to_openai(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {
            "name": call.name,
            "arguments": call.arguments if call.arguments.strip() else "{}",
        },
    }


def tool_to_openai(tool: ToolDefinition) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


@attrs.define
class _CallBuilder:
    id: str
    synthetic_id: bool
    name: str | None = None
    fragments: list[str] = attrs.Factory(list)

    def build(self) -> ToolCall:
        arguments = "".join(self.fragments)
        return ToolCall(self.id, self.name or "", arguments if arguments.strip() else "{}")


class OpenAIStreamDecoder(MarkedStreamDecoder):
    """Turns a Chat Completions SSE body into ``TextDelta``s and one ``StreamEnd``.

    ``id_tag`` makes synthesized call ids (for servers that send none) unique beyond this
    stream; it is random by default so ids from different turns never collide.
    """

    END_MARKER = "[DONE]"

    def __init__(self, provider_name: str = "openai", *, id_tag: str | None = None) -> None:
        super().__init__()
        self._provider = provider_name
        self._id_tag = id_tag if id_tag is not None else secrets.token_hex(4)
        self._text: list[str] = []
        self._thought: list[str] = []
        self._calls: dict[int, _CallBuilder] = {}
        self._index_by_id: dict[str, int] = {}
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    def _stopped(self) -> bool:
        return self._finish_reason is not None

    # --- chunks ---------------------------------------------------------------------------

    def _handle_event(self, sse: SSEEvent, events: list[ProviderEvent]) -> None:
        data = sse.data
        if data.strip() == "[DONE]":
            events.append(self._end())
            return
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            if sse.event == "error":
                raise self._error(" ".join(data.split()) or "error event") from None
            raise self._error(
                f"malformed JSON in stream: {truncate(data, _QUOTE_LIMIT)!r}"
            ) from None
        if not isinstance(chunk, dict):
            raise self._error(f"unexpected stream chunk: {truncate(data, _QUOTE_LIMIT)!r}")
        if chunk.get("error") is not None:
            raise self._stream_error(chunk["error"])
        if sse.event == "error":
            raise self._stream_error(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict):  # null except in the include_usage chunk
            self._usage = _parse_usage(usage)
        choices = chunk.get("choices")
        if not isinstance(choices, list):  # the usage chunk may say null
            return
        for choice in choices:
            # We never ask for n > 1, so only choice 0 (or an unnumbered one) counts.
            if not isinstance(choice, dict) or choice.get("index") not in (0, None):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._handle_delta(delta, events)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                self._finish_reason = reason

    def _handle_delta(self, delta: dict[str, Any], events: list[ProviderEvent]) -> None:
        for field in REASONING_FIELDS:  # thinking, shown apart and never taken as text
            thought = delta.get(field)
            if isinstance(thought, str) and thought:
                self._thought.append(thought)
                events.append(ThinkingDelta(thought))
                break
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text.append(content)
            events.append(TextDelta(content))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for position, item in enumerate(tool_calls):
                if isinstance(item, dict):
                    self._handle_tool_fragment(position, item)

    def _handle_tool_fragment(self, position: int, item: dict[str, Any]) -> None:
        """Add one ``tool_calls[]`` item to its call; the first ``id``/``name`` stick."""
        raw_id = item.get("id")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        index = self._route(item.get("index"), position, call_id)
        function = item.get("function")
        if not isinstance(function, dict):
            function = {}
        raw_name = function.get("name")
        name = raw_name if isinstance(raw_name, str) and raw_name else None
        arguments = _arguments_text(function.get("arguments"))

        builder = self._calls.get(index)
        if builder is None:
            synthetic = call_id is None
            new_id = f"call_{index}_{self._id_tag}" if call_id is None else call_id
            builder = _CallBuilder(new_id, synthetic)
            self._calls[index] = builder
            self._index_by_id[new_id] = index
        elif call_id is not None and builder.synthetic_id:
            # The id came late; keep the one already assigned, but route the real one here.
            self._index_by_id.setdefault(call_id, index)
        if name is not None and builder.name is None:
            builder.name = name
        if arguments:
            builder.fragments.append(arguments)

    def _route(self, raw_index: Any, position: int, call_id: str | None) -> int:
        """Which call a fragment belongs to.

        A known ``id`` wins (servers that repeat it). A *new* id at an index that is already
        taken is a new call: Ollama numbers every streamed call 0 (ollama/ollama#15457).
        """
        if call_id is not None and call_id in self._index_by_id:
            return self._index_by_id[call_id]
        if isinstance(raw_index, int) and not isinstance(raw_index, bool) and raw_index >= 0:
            index = raw_index
        else:
            index = position
        existing = self._calls.get(index)
        if call_id is not None and existing is not None and not existing.synthetic_id:
            index = max(self._calls) + 1
        return index

    # --- the end --------------------------------------------------------------------------

    def _end(self) -> StreamEnd:
        self._ended = True
        calls = tuple(self._calls[index].build() for index in sorted(self._calls))
        return StreamEnd(
            text="".join(self._text),
            tool_calls=calls,
            finish_reason=_finish_reason(self._finish_reason, bool(calls)),
            usage=self._usage,
            reasoning=(
                Reasoning("".join(self._thought), REASONING_FORMAT) if self._thought else None
            ),
        )

    def _stream_error(self, error: Any) -> ProviderError:
        if isinstance(error, dict):
            message = error.get("message")
            kind = f"{error.get('type', '')} {error.get('code', '')}".lower()
            code = error.get("code")
        else:
            message, kind, code = error, "", None
        text = " ".join(str(message).split()) if message else "unknown error in stream"
        retryable = any(word in kind for word in _RETRYABLE_ERROR_WORDS) or (
            isinstance(code, int) and is_retryable_status(code)
        )
        return self._error(truncate(text, 500), retryable=retryable)

    def _error(self, message: str, *, retryable: bool = False) -> ProviderError:
        return ProviderError(message, provider=self._provider, retryable=retryable)


def _finish_reason(raw: str | None, has_calls: bool) -> FinishReason:
    """Normalise; assembled calls mean TOOL_CALLS (local servers say ``stop``).

    A truncated or filtered response keeps its reason: its calls may be cut off mid-argument.
    A missing reason after ``[DONE]`` is a normal end.
    """
    reason = FinishReason.STOP if raw is None else _FINISH_REASONS.get(raw, FinishReason.OTHER)
    if has_calls and reason not in (FinishReason.LENGTH, FinishReason.REFUSAL):
        return FinishReason.TOOL_CALLS
    return reason


def _arguments_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)  # a few servers send the arguments as an object


def _parse_usage(usage: dict[str, Any]) -> Usage:
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=token_count(usage.get("prompt_tokens")),
        output_tokens=token_count(usage.get("completion_tokens")),
        cache_read_tokens=token_count(cached),
    )
