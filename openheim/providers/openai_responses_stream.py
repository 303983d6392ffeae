"""Decoding the OpenAI Responses API SSE body (sans-IO).

The stream is a sequence of typed events about *output items*: a ``reasoning`` item (its
summary streams as ``response.reasoning_summary_text.delta``), a ``message`` item (text in
``response.output_text.delta``) and ``function_call`` items (arguments in
``response.function_call_arguments.delta``). Each item ends with ``response.output_item.done``
carrying it whole; the stream ends with ``response.completed``, ``response.incomplete`` or
``response.failed`` and has no ``[DONE]``.

Reasoning items are kept whole, ``encrypted_content`` included, because with ``store: false``
the API remembers nothing: a tool loop must send them back verbatim, and one without its
encrypted content cannot go back at all (the API looks its id up and finds nothing).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
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
from openheim.providers.http import MAX_BODY_MESSAGE, stream_event_object, token_count, truncate
from openheim.providers.marked import MarkedStreamDecoder
from openheim.providers.sse import SSEEvent

#: The ``Reasoning.format`` of reasoning items this dialect produced and takes back.
REASONING_FORMAT = "openai-responses"
#: ``incomplete_details.reason`` values, in our words; others are ``OTHER``.
_INCOMPLETE_REASONS = {
    "max_output_tokens": FinishReason.LENGTH,
    "content_filter": FinishReason.REFUSAL,
}
RETRYABLE_ERROR_WORDS = ("rate_limit", "overloaded", "server_error", "unavailable", "timeout")
_QUOTE_LIMIT = 200
#: Between two reasoning summary parts, as people read them.
_THOUGHT_BREAK = "\n\n"
#: What ``_key`` gives an event that names neither its output index nor its item.
_NO_KEY = "?"


@attrs.define
class _Call:
    """A ``function_call`` item as it streams; the ``done`` events' whole values win."""

    call_id: str | None = None
    name: str = ""
    fragments: list[str] = attrs.Factory(list)
    arguments: str | None = None

    def build(self, fallback_id: str) -> ToolCall:
        arguments = self.arguments if self.arguments is not None else "".join(self.fragments)
        return ToolCall(
            self.call_id or fallback_id, self.name, arguments if arguments.strip() else "{}"
        )


class ResponsesStreamDecoder(MarkedStreamDecoder):
    """Turns a Responses SSE body into ``TextDelta``s, ``ThinkingDelta``s and one ``StreamEnd``.

    Items are tracked by ``output_index`` (or ``item_id`` when a proxy leaves the index
    out). ``id_tag`` only makes ids synthesized for calls without ``call_id`` unique beyond
    this stream; it is random by default.
    """

    END_MARKER = "response.completed"

    def __init__(self, provider_name: str = "openai", *, id_tag: str | None = None) -> None:
        super().__init__()
        self._provider = provider_name
        self._id_tag = id_tag if id_tag is not None else secrets.token_hex(4)
        self._text: list[str] = []
        self._thought: list[str] = []  # every summary text shown, breaks included
        self._calls: dict[str, _Call] = {}
        self._reasoning_items: list[dict[str, Any]] = []  # whole, to send back
        self._streamed: set[str] = set()  # items whose text or summary arrived as deltas
        self._summary_part: tuple[str, object] | None = None  # the part being shown
        self._refused = False
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None

    def _stopped(self) -> bool:
        return False  # only a terminal event ends this format; it emits the end itself

    # --- events ---------------------------------------------------------------------------

    def _handle_event(self, sse: SSEEvent, events: list[ProviderEvent]) -> None:
        payload = stream_event_object(sse.data, sse.event, self._provider)
        kind = payload.get("type")
        if not isinstance(kind, str):
            kind = sse.event
        if kind == "error" or sse.event == "error" or payload.get("error") is not None:
            error = payload.get("error")
            raise self._stream_error(error if error is not None else payload)
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, payload, events)

    def _on_item_added(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        item = payload.get("item")
        if isinstance(item, dict) and item.get("type") == "function_call":
            self._take_call(self._call(_key(payload, item)), item)

    def _on_text_delta(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, str) and delta:
            self._streamed.add(_key(payload))
            self._add_text(delta, events)

    def _on_refusal_delta(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        self._refused = True
        self._on_text_delta(payload, events)

    def _on_summary_delta(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        delta = payload.get("delta")
        if not isinstance(delta, str) or not delta:
            return
        key = _key(payload)
        self._streamed.add(key)
        self._add_thought((key, payload.get("summary_index")), delta, events)

    def _on_arguments_delta(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, str) and delta:
            self._call(_key(payload)).fragments.append(delta)

    def _on_arguments_done(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        arguments = payload.get("arguments")
        if isinstance(arguments, str):
            self._call(_key(payload)).arguments = arguments

    def _on_item_done(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        item = payload.get("item")
        if not isinstance(item, dict):
            return
        key = _key(payload, item)
        kind = item.get("type")
        if kind == "function_call":
            call = self._call(key)
            self._take_call(call, item)
            if isinstance(item.get("arguments"), str):
                call.arguments = item["arguments"]
        elif kind == "reasoning":
            encrypted = item.get("encrypted_content")
            if isinstance(encrypted, str) and encrypted:
                self._reasoning_items.append(item)
            if key not in self._streamed:  # a proxy that sends whole items only
                for number, text in enumerate(_texts(item.get("summary"), "summary_text")):
                    self._add_thought((key, number), text, events)
        elif kind == "message" and key not in self._streamed:
            for text in _texts(item.get("content"), "output_text", "refusal"):
                self._add_text(text, events)

    def _on_completed(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        self._take_usage(payload.get("response"))
        self._finish = FinishReason.REFUSAL if self._refused else FinishReason.STOP
        events.append(self._end())

    def _on_incomplete(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        response = payload.get("response")
        self._take_usage(response)
        details = response.get("incomplete_details") if isinstance(response, dict) else None
        reason = details.get("reason") if isinstance(details, dict) else None
        self._finish = _INCOMPLETE_REASONS.get(reason, FinishReason.OTHER)
        events.append(self._end())

    def _on_failed(self, payload: dict[str, Any], events: list[ProviderEvent]) -> None:
        response = payload.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        raise self._stream_error(error if error is not None else "the response failed")

    # --- state ----------------------------------------------------------------------------

    def _call(self, key: str) -> _Call:
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _Call()
        return call

    @staticmethod
    def _take_call(call: _Call, item: dict[str, Any]) -> None:
        call_id, name = item.get("call_id"), item.get("name")
        if isinstance(call_id, str) and call_id and call.call_id is None:
            call.call_id = call_id
        if isinstance(name, str) and name and not call.name:
            call.name = name

    def _add_text(self, text: str, events: list[ProviderEvent]) -> None:
        self._text.append(text)
        events.append(TextDelta(text))

    def _add_thought(
        self, part: tuple[str, object], text: str, events: list[ProviderEvent]
    ) -> None:
        # A new summary part starts a new paragraph of what people see.
        shown = _THOUGHT_BREAK + text if part != self._summary_part and self._thought else text
        self._summary_part = part
        self._thought.append(shown)
        events.append(ThinkingDelta(shown))

    def _take_usage(self, response: Any) -> None:
        usage = response.get("usage") if isinstance(response, dict) else None
        if isinstance(usage, dict):
            self._usage = parse_usage(usage)

    # --- the end --------------------------------------------------------------------------

    def _end(self) -> StreamEnd:
        self._ended = True
        calls = tuple(
            call.build(f"call_{number}_{self._id_tag}")
            for number, call in enumerate(self._calls.values())
            if call.name or call.call_id
        )
        finish = self._finish or FinishReason.STOP
        if calls and finish is FinishReason.STOP:
            finish = FinishReason.TOOL_CALLS
        return StreamEnd(
            text="".join(self._text),
            tool_calls=calls,
            finish_reason=finish,
            usage=self._usage,
            reasoning=self._reasoning(),
        )

    def _reasoning(self) -> Reasoning | None:
        if not self._thought and not self._reasoning_items:
            return None
        blocks = self._reasoning_items
        return Reasoning(
            text="".join(self._thought),
            format=REASONING_FORMAT,
            blocks=json.dumps(blocks, ensure_ascii=False) if blocks else "",
        )

    def _stream_error(self, error: Any) -> ProviderError:
        if isinstance(error, dict):
            code = error.get("code") if error.get("code") is not None else error.get("type")
            raw = error.get("message")
            kind = code if isinstance(code, str) else ""
            message = " ".join(str(raw).split()) if raw is not None else ""
        else:
            kind, message = "", " ".join(str(error).split())
        text = f"{kind}: {message}" if kind and message else message or kind
        retryable = any(word in kind.lower() for word in RETRYABLE_ERROR_WORDS)
        return self._error(
            truncate(text or "unknown error in stream", MAX_BODY_MESSAGE), retryable=retryable
        )

    def _error(self, message: str, *, retryable: bool = False) -> ProviderError:
        return ProviderError(message, provider=self._provider, retryable=retryable)


_Handler = Callable[[ResponsesStreamDecoder, dict[str, Any], list[ProviderEvent]], None]
#: What each event type does; the others (``response.created``, ``*.done`` texts) carry
#: nothing new.
_HANDLERS: dict[str, _Handler] = {
    "response.output_item.added": ResponsesStreamDecoder._on_item_added,
    "response.output_text.delta": ResponsesStreamDecoder._on_text_delta,
    "response.refusal.delta": ResponsesStreamDecoder._on_refusal_delta,
    "response.reasoning_summary_text.delta": ResponsesStreamDecoder._on_summary_delta,
    "response.function_call_arguments.delta": ResponsesStreamDecoder._on_arguments_delta,
    "response.function_call_arguments.done": ResponsesStreamDecoder._on_arguments_done,
    "response.output_item.done": ResponsesStreamDecoder._on_item_done,
    "response.completed": ResponsesStreamDecoder._on_completed,
    "response.incomplete": ResponsesStreamDecoder._on_incomplete,
    "response.failed": ResponsesStreamDecoder._on_failed,
}


def _key(payload: dict[str, Any], item: dict[str, Any] | None = None) -> str:
    """Which output item an event is about: its ``output_index``, else its item id."""
    index = payload.get("output_index")
    if isinstance(index, int) and not isinstance(index, bool):
        return f"#{index}"
    item_id = payload.get("item_id")
    if item_id is None and item is not None:
        item_id = item.get("id")
    return item_id if isinstance(item_id, str) and item_id else _NO_KEY


def _texts(parts: Any, *kinds: str) -> list[str]:
    """The non-empty ``text`` of every part of one of ``kinds`` in a whole item's list."""
    if not isinstance(parts, list):
        return []
    return [
        part["text"]
        for part in parts
        if isinstance(part, dict)
        and part.get("type") in kinds
        and isinstance(part.get("text"), str)
        and part["text"]
    ]


def parse_usage(usage: dict[str, Any]) -> Usage:
    """``input_tokens`` already includes the cached ones; ``output_tokens`` the reasoning."""
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=token_count(usage.get("input_tokens")),
        output_tokens=token_count(usage.get("output_tokens")),
        cache_read_tokens=token_count(cached),
    )
