"""The OpenAI Responses API wire format (sans-IO): the dialect and its request encoding.

OpenAI serves its newest reasoning and coding models only at ``POST {base}/responses``. It
differs from Chat Completions in ways that shape this module: the conversation is a list of
*input items* (messages with typed content parts, ``function_call`` and
``function_call_output`` items, ``reasoning`` items), the system prompt is ``instructions``,
tools are flat ``{type: "function", name, ...}`` objects, and the stream is typed events
about output items (``openai_responses_stream``).

We send ``store: false``, so OpenAI keeps nothing between requests and every request carries
the whole conversation, like the other providers. The model's reasoning then survives a tool
loop only as the ``reasoning`` items it returned with ``include:
["reasoning.encrypted_content"]``; they are stored in the history as opaque blocks and go
back verbatim, and only to this format. A level other than ``off`` becomes ``reasoning:
{effort, summary: "auto"}``, the summary being what people see as thoughts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import ImagePart, Message, ReasoningLevel, Role, ToolDefinition
from openheim.providers.base import ChatRequest, HttpRequest
from openheim.providers.http import (
    api_base,
    http_error,
)
from openheim.providers.openai_responses_stream import REASONING_FORMAT, ResponsesStreamDecoder

__all__ = ["OpenAIResponsesDialect", "ResponsesStreamDecoder"]

#: What to ask back so that reasoning can go back with ``store: false``.
INCLUDE_ENCRYPTED_REASONING = "reasoning.encrypted_content"

Item = dict[str, Any]


@attrs.frozen
class OpenAIResponsesDialect:
    """The Responses API for one configured provider (``api_base`` like ``https://…/v1``)."""

    api_base: str = attrs.field(converter=api_base)
    provider_name: str = "openai"

    @property
    def name(self) -> str:
        return self.provider_name

    def build_request(self, request: ChatRequest, api_key: str | None) -> HttpRequest:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        body: dict[str, Any] = {
            "model": request.model,
            "input": input_items(request.messages),
            "stream": True,
            "store": False,
            "include": [INCLUDE_ENCRYPTED_REASONING],
        }
        instructions = system_text(request.messages)
        if instructions:
            body["instructions"] = instructions
        if request.tools:
            body["tools"] = [tool_to_responses(tool) for tool in request.tools]
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        if request.reasoning is not ReasoningLevel.OFF:
            body["reasoning"] = {"effort": request.reasoning.value, "summary": "auto"}
        return HttpRequest("POST", f"{self.api_base}/responses", headers, body)

    def new_decoder(self) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(self.provider_name)

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


# --- requests ------------------------------------------------------------------------------


def system_text(messages: Sequence[Message]) -> str:
    """Every system message's text, joined: the API takes one ``instructions`` string."""
    return "\n\n".join(
        m.content for m in messages if m.role is Role.SYSTEM and m.content and m.content.strip()
    )


def input_items(messages: Sequence[Message]) -> list[Item]:
    """Our conversation as input items; system messages go to ``instructions``.

    A tool result's images follow the run of results they belong to, in a user message: a
    ``function_call_output`` here holds text.
    """
    items: list[Item] = []
    pending: list[Message] = []  # tool results with images, not yet shown
    for message in messages:
        if message.role is not Role.TOOL and pending:
            items.append(tool_images_message(pending))
            pending = []
        if message.role is Role.SYSTEM:
            continue
        if message.role is Role.ASSISTANT:
            items.extend(assistant_items(message))
        elif message.role is Role.TOOL:
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id or "",
                    "output": message.content or "",
                }
            )
            if message.images:
                pending.append(message)
        else:
            items.append(user_message(message))
    if pending:
        items.append(tool_images_message(pending))
    return items


def user_message(message: Message) -> Item:
    text = [{"type": "input_text", "text": message.content}] if message.content else []
    images = [image_part(image) for image in message.images]
    return {"type": "message", "role": "user", "content": [*text, *images]}


def image_part(image: ImagePart) -> Item:
    """An ``input_image`` holding the image as a data URL."""
    return {
        "type": "input_image",
        "image_url": f"data:{image.mime_type};base64,{image.data}",
        "detail": "auto",
    }


def tool_images_message(results: Sequence[Message]) -> Item:
    parts: list[Item] = []
    for result in results:
        count = len(result.images)
        label = f"{count} image{'s' if count > 1 else ''}"
        intro = f"[{label} from the result of {result.tool_name} ({result.tool_call_id})]"
        parts.append({"type": "input_text", "text": intro})
        parts.extend(image_part(image) for image in result.images)
    return {"type": "message", "role": "user", "content": parts}


def assistant_items(message: Message) -> list[Item]:
    """One assistant reply as items: its reasoning (verbatim), its text, its calls.

    Reasoning goes back only when something follows it in the same reply; the API refuses a
    reasoning item "without its required following item".
    """
    items: list[Item] = []
    if message.content:
        items.append(
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": message.content}],
            }
        )
    for call in message.tool_calls:
        items.append(
            {
                "type": "function_call",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments if call.arguments.strip() else "{}",
            }
        )
    if items and message.reasoning is not None:
        reasoning = message.reasoning.provider_blocks(REASONING_FORMAT)
        items[:0] = [item for item in reasoning if item.get("type") == "reasoning"]
    return items


def tool_to_responses(tool: ToolDefinition) -> Item:
    """A flat function tool. ``strict`` is off: the API's strict mode (its default) wants
    every property required and ``additionalProperties: false``, which MCP schemas rarely
    are."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": False,
    }
