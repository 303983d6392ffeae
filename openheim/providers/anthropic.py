"""The Anthropic Messages wire format (sans-IO): the dialect and its request encoding.

Anthropic differs from OpenAI in ways that shape this module: the system prompt is a top-level
field, roles must alternate (so consecutive messages of one role merge), tool results are
blocks inside a *user* message, ``max_tokens`` is required, tool input streams as JSON
fragments per content block (``anthropic_stream``), ``input_tokens`` excludes cached prompt
tokens, and extended thinking wants its signed blocks back at the start of the assistant
message in a tool loop.

Reasoning levels become ``thinking: {type: "enabled", budget_tokens}`` with the budgets of
``THINKING_BUDGETS`` (low 2048, medium 8192, high 24576). The API wants the budget below
``max_tokens``, so the budget is added on top of the answer's own ``max_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import ImagePart, Message, Role, ToolCall, ToolDefinition
from openheim.providers.anthropic_stream import (
    REASONING_FORMAT,
    RETRYABLE_ERROR_TYPES,
    AnthropicStreamDecoder,
)
from openheim.providers.base import ChatRequest, HttpRequest, thinking_budget
from openheim.providers.http import (
    api_base,
    error_message_from_body,
    is_retryable_status,
    retry_after_from_headers,
    truncate,
)

__all__ = ["AnthropicDialect", "AnthropicStreamDecoder"]

DEFAULT_API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

#: What an empty failed tool result says: the API rejects an error ``tool_result`` without
#: content, and the model still needs to learn that the call failed.
EMPTY_ERROR_RESULT = "(the tool failed without output)"
_THINKING_TYPES = ("thinking", "redacted_thinking")


@attrs.frozen
class AnthropicDialect:
    """Messages API for one configured provider (``api_base`` like ``https://…/v1``).

    ``default_max_tokens`` fills the field the API requires when the request leaves it open.
    """

    api_base: str = attrs.field(converter=api_base)
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
        answer = self.default_max_tokens if request.max_tokens is None else request.max_tokens
        messages = messages_to_anthropic(request.messages)
        budget = thinking_budget(request.reasoning)
        if budget is not None and not thinking_can_continue(messages):
            budget = None
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": answer if budget is None else answer + budget,
            "stream": True,
        }
        if budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        system = system_text(request.messages)
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [tool_to_anthropic(tool) for tool in request.tools]
        body["messages"] = messages
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
    if message.role is Role.ASSISTANT:
        blocks.extend(thinking_blocks(message))
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


def thinking_blocks(message: Message) -> list[dict[str, Any]]:
    """The signed ``thinking`` and ``redacted_thinking`` blocks of an Anthropic reply, as they
    came; thinking another provider produced has no signature this API accepts."""
    if message.reasoning is None:
        return []
    blocks = message.reasoning.provider_blocks(REASONING_FORMAT)
    return [block for block in blocks if block.get("type") in _THINKING_TYPES]


def thinking_can_continue(turns: list[dict[str, Any]]) -> bool:
    """Whether thinking may be on for a request with these ``turns``.

    With thinking on, the API wants the assistant turn of an unfinished tool loop (the last
    one, answered by tool results) to start with its thinking. A loop begun with thinking
    off, or by another provider, has none, and the only valid request is one without
    thinking; it comes back on with the next prompt.
    """
    for position in range(len(turns) - 1, -1, -1):
        if turns[position]["role"] != "assistant":
            continue
        following = turns[position + 1]["content"] if position + 1 < len(turns) else []
        if not any(block.get("type") == "tool_result" for block in following):
            return True
        content = turns[position]["content"]
        return bool(content) and content[0].get("type") in _THINKING_TYPES
    return True


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
