"""Decoding the Anthropic Messages SSE body (sans-IO).

Content arrives as numbered blocks: text runs, tool calls whose input streams as JSON
fragments, and thinking. A ``thinking`` block streams its text in ``thinking_delta``s and its
signature in a ``signature_delta``; a ``redacted_thinking`` block arrives whole and
encrypted. Both are kept, exactly as sent, for the next request of a tool loop.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import attrs

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Reasoning, ToolCall, Usage
from openheim.providers.base import (
    FinishReason,
    ProviderEvent,
    StreamEnd,
    TextDelta,
    ThinkingDelta,
)
from openheim.providers.http import stream_event_object, truncate
from openheim.providers.marked import MarkedStreamDecoder
from openheim.providers.sse import SSEEvent

#: The ``Reasoning.format`` of thinking blocks this dialect produced and takes back.
REASONING_FORMAT = "anthropic"

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
_QUOTE_LIMIT = 200
#: Between the texts of two thinking blocks of one reply (interleaved thinking).
_THOUGHT_BREAK = "\n\n"


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


@attrs.define
class _ThinkingBlock:
    """A ``thinking`` block as it streams; ``redacted`` holds a ``redacted_thinking`` one."""

    parts: list[str] = attrs.Factory(list)
    signature: list[str] = attrs.Factory(list)
    redacted: str | None = None

    def wire(self) -> dict[str, Any] | None:
        """The block as the API wants it back; ``None`` when it cannot go back (unsigned)."""
        if self.redacted is not None:
            return {"type": "redacted_thinking", "data": self.redacted}
        signature = "".join(self.signature)
        if not signature:
            return None
        return {"type": "thinking", "thinking": "".join(self.parts), "signature": signature}


_TEXT = "text"
_OTHER = "other"  # server tools and unknown blocks: not shown


class AnthropicStreamDecoder(MarkedStreamDecoder):
    """Turns a Messages SSE body into ``TextDelta``s, ``ThinkingDelta``s and one ``StreamEnd``.

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
        # stream index -> tool block, thinking block or kind
        self._blocks: dict[int, _ToolBlock | _ThinkingBlock | str] = {}
        self._tools: list[_ToolBlock] = []
        self._thinking: list[_ThinkingBlock] = []
        self._thought: list[str] = []  # every thinking text shown, breaks included
        self._current: int | None = None  # the last started block, for events without index
        self._stop_reason: str | None = None
        self._usage: dict[str, int] = {}

    def _stopped(self) -> bool:
        return self._stop_reason is not None

    # --- events ---------------------------------------------------------------------------

    def _handle_event(self, sse: SSEEvent, events: list[ProviderEvent]) -> None:
        payload = stream_event_object(sse.data, sse.event, self._provider)
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
        elif kind in ("thinking", "redacted_thinking"):
            self._start_thinking(index, block, events)
        else:
            self._blocks[index] = _OTHER

    def _start_thinking(
        self, index: int, block: dict[str, Any], events: list[ProviderEvent]
    ) -> None:
        thinking = _ThinkingBlock()
        if block.get("type") == "redacted_thinking":
            data = block.get("data")
            thinking.redacted = data if isinstance(data, str) else ""
        else:
            signature = block.get("signature")
            if isinstance(signature, str) and signature:
                thinking.signature.append(signature)
        self._thinking.append(thinking)
        self._blocks[index] = thinking
        text = block.get("thinking")
        if thinking.redacted is None and isinstance(text, str) and text:
            self._add_thought(thinking, text, events)

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
        elif isinstance(block, _ThinkingBlock) and block.redacted is None:
            value = delta.get(kind.removesuffix("_delta")) if isinstance(kind, str) else None
            if not isinstance(value, str) or not value:
                return
            if kind == "thinking_delta":
                self._add_thought(block, value, events)
            elif kind == "signature_delta":
                block.signature.append(value)
        # citations_delta and unknown deltas: nothing to show.

    def _add_text(self, text: str, events: list[ProviderEvent]) -> None:
        self._text.append(text)
        events.append(TextDelta(text))

    def _add_thought(self, block: _ThinkingBlock, text: str, events: list[ProviderEvent]) -> None:
        # A later block's first words start a new paragraph of what people see.
        shown = _THOUGHT_BREAK + text if not block.parts and self._thought else text
        block.parts.append(text)
        self._thought.append(shown)
        events.append(ThinkingDelta(shown))

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
            reasoning=self._reasoning(),
        )

    def _reasoning(self) -> Reasoning | None:
        if not self._thinking:
            return None
        blocks = [wire for block in self._thinking if (wire := block.wire()) is not None]
        return Reasoning(
            text="".join(self._thought),
            format=REASONING_FORMAT,
            blocks=json.dumps(blocks, ensure_ascii=False) if blocks else "",
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
