"""The Google Gemini ``streamGenerateContent`` wire format (sans-IO): the dialect and its
request encoding.

Gemini differs from OpenAI in ways that shape these modules: every SSE event is a whole
``GenerateContentResponse`` and there is no end marker (``gemini_stream``); function calls
arrive whole and usually without ids; ``STOP`` is also the reason after calls; a call's
``thoughtSignature`` must go back unchanged; and ``parameters`` take an OpenAPI subset that
rejects common JSON Schema keywords, so schemas are reduced (``gemini_schema``).

Reasoning levels become ``generationConfig.thinkingConfig``: ``thinkingBudget`` from
``THINKING_BUDGETS`` (low 2048, medium 8192, high 24576) and ``includeThoughts: true``, so
the thought summaries stream as ``thought: true`` parts. At ``off`` no ``thinkingConfig``
is sent and the model thinks as it does by default, showing nothing. Thought parts go back
at the start of their model turn, as they came.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import attrs

from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, Role, ToolCall, ToolDefinition
from openheim.providers.base import ChatRequest, HttpRequest, thinking_budget
from openheim.providers.gemini_schema import to_gemini_schema
from openheim.providers.gemini_stream import (
    REASONING_FORMAT,
    GeminiStreamDecoder,
    google_error,
    google_error_message,
    retry_delay,
)
from openheim.providers.http import (
    api_base,
    error_message_from_body,
    is_retryable_status,
    retry_after_from_headers,
)


@attrs.frozen
class GeminiDialect:
    """The Gemini API (``api_base`` like ``https://generativelanguage.googleapis.com/v1beta``)."""

    api_base: str = attrs.field(converter=api_base)
    provider_name: str = "gemini"

    @property
    def name(self) -> str:
        return self.provider_name

    def build_request(self, request: ChatRequest, api_key: str | None) -> HttpRequest:
        # The key goes in a header: the documented ``?key=`` form leaks it into logs.
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if api_key:
            headers["x-goog-api-key"] = api_key
        body: dict[str, Any] = {"contents": messages_to_gemini(request.messages)}
        system = [
            {"text": message.content}
            for message in request.messages
            if message.role is Role.SYSTEM and message.content
        ]
        if system:
            body["systemInstruction"] = {"parts": system}
        if request.tools:
            declarations = [tool_to_gemini(tool) for tool in request.tools]
            body["tools"] = [{"functionDeclarations": declarations}]
        generation: dict[str, Any] = {}
        if request.max_tokens is not None:
            generation["maxOutputTokens"] = request.max_tokens
        budget = thinking_budget(request.reasoning)
        if budget is not None:
            generation["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}
        if generation:
            body["generationConfig"] = generation
        url = f"{self.api_base}/models/{model_path(request.model)}:streamGenerateContent?alt=sse"
        return HttpRequest("POST", url, headers, body)

    def new_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(self.provider_name)

    def parse_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> ProviderError:
        """``now`` only matters for an HTTP-date ``Retry-After``; default is the current time.

        Gemini says how long to wait in a ``google.rpc.RetryInfo`` detail rather than a
        header, so that is the fallback when no header gives a delay.
        """
        error = google_error(body)
        message = google_error_message(error) if error is not None else None
        retry_after = retry_after_from_headers(headers, now=now)
        if retry_after is None and error is not None:
            retry_after = retry_delay(error)
        return ProviderError(
            message or error_message_from_body(status, body),
            provider=self.provider_name,
            status=status,
            retryable=is_retryable_status(status),
            retry_after=retry_after,
        )


def model_path(model: str) -> str:
    """``model`` as one URL path segment; a pasted ``models/`` prefix is tolerated."""
    return quote(model.removeprefix("models/"), safe="")


# --- requests -------------------------------------------------------------------------------


def messages_to_gemini(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Our conversation as Gemini ``contents``; system messages are left to the caller.

    Tool results become ``functionResponse`` parts of a ``user`` content, and consecutive
    contents of one role are merged: Gemini wants all responses to one model turn together,
    one per call.
    """
    names = {
        call.id: call.name
        for message in messages
        if message.role is Role.ASSISTANT
        for call in message.tool_calls
    }
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        if message.role is Role.ASSISTANT:
            role, parts = "model", _model_parts(message)
        elif message.role is Role.TOOL:
            name = message.tool_name or names.get(message.tool_call_id or "", "")
            key = "error" if message.is_error else "result"
            response = {"name": name, "response": {key: message.content or ""}}
            role, parts = "user", [{"functionResponse": response}, *image_parts(message)]
        else:
            role, parts = "user", [{"text": message.content}] if message.content else []
            parts.extend(image_parts(message))
        if not parts:
            continue  # Gemini rejects empty contents and empty text parts
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return [responses_first(content) for content in contents]


def image_parts(message: Message) -> list[dict[str, Any]]:
    """A message's images as ``inlineData`` parts."""
    return [
        {"inlineData": {"mimeType": image.mime_type, "data": image.data}}
        for image in message.images
    ]


def responses_first(content: dict[str, Any]) -> dict[str, Any]:
    """A user content with a tool result's images: every ``functionResponse`` before them, so
    the responses to one model turn stay together."""
    parts = content["parts"]
    if content["role"] != "user" or not any("inlineData" in part for part in parts):
        return content
    responses = [part for part in parts if "functionResponse" in part]
    rest = [part for part in parts if "functionResponse" not in part]
    return {"role": "user", "parts": [*responses, *rest]}


def _model_parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = thought_parts(message)
    if message.content:
        parts.append({"text": message.content})
    for call in message.tool_calls:
        parts.append(tool_call_to_gemini(call))
    return parts


def thought_parts(message: Message) -> list[dict[str, Any]]:
    """The ``thought: true`` parts of a Gemini reply, signatures and all, as they came."""
    if message.reasoning is None:
        return []
    blocks = message.reasoning.provider_blocks(REASONING_FORMAT)
    return [part for part in blocks if part.get("thought") is True]


def tool_call_to_gemini(call: ToolCall) -> dict[str, Any]:
    """A ``functionCall`` part; its ``thoughtSignature`` goes back exactly as it came."""
    try:
        args = call.parsed_arguments()
    except ValueError:
        args = {}  # Gemini only takes an object; the tool result already told the model why
    part: dict[str, Any] = {"functionCall": {"name": call.name, "args": args}}
    if call.signature is not None:
        part["thoughtSignature"] = call.signature
    return part


def tool_to_gemini(tool: ToolDefinition) -> dict[str, Any]:
    """A function declaration; ``parameters`` is left out for a tool that takes none.

    Older Gemini models reject an object schema without properties at the top level
    ("properties: should be non-empty for OBJECT type"), and leaving it out is always valid.
    """
    declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
    parameters = to_gemini_schema(tool.parameters)
    if parameters.get("properties"):
        declaration["parameters"] = parameters
    return declaration
