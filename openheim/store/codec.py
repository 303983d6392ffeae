"""The history document: OpenAI-shaped messages, the shape openheim clients already render.

Version 1 layout::

    {"schema_version": 1,
     "meta": {"id", "created_at", "updated_at", "model"?, "provider"?, "title"?, "skills", "cwd"?},
     "messages": [{"role", "content", "tool_calls"?, "tool_call_id"?, "tool_name"?, "is_error"?,
                   "images"?: [{"mime_type", "data" (base64)}],
                   "reasoning"?: {"text"?, "format"?, "blocks"?: [provider blocks]}}],
     "compactions"?: [{"at", "method", "tokens_before", "tokens_after", "created_at",
                       "upto"?, "summary"?, "dropped"?, "elided"?, "truncated"?}]}

The file store adds a top-level ``"version"`` (the owners' saves so far; see
``store.file_lease``), which reading ignores.

``images`` (a prompt's or a tool result's) is written only when there are some, and
``reasoning`` and ``compactions`` (``openheim.agent.compaction``) came later: documents without
them read as before and older files load unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from openheim.foundation.models import Compaction, Conversation, Message, Reasoning, ToolCall
from openheim.store.base import ConversationMeta

SCHEMA_VERSION = 1


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Any, _: type) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _unstructure_call(call: ToolCall) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    if call.signature is not None:
        data["signature"] = call.signature
    return data


def _structure_call(data: Any, _: type) -> ToolCall:
    function = data["function"]
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):  # tolerate documents written by other tools
        arguments = json.dumps(arguments)
    signature = data.get("signature")
    return ToolCall(
        id=str(data["id"]),
        name=str(function["name"]),
        arguments=arguments,
        signature=signature if isinstance(signature, str) else None,
    )


def _unstructure_reasoning(reasoning: Reasoning) -> dict[str, Any]:
    """The provider blocks are stored as JSON, not as a string of JSON, to stay readable."""
    data: dict[str, Any] = {}
    if reasoning.text:
        data["text"] = reasoning.text
    if reasoning.format:
        data["format"] = reasoning.format
    if reasoning.blocks:
        data["blocks"] = json.loads(reasoning.blocks)
    return data


def _structure_reasoning(data: Any, _: type) -> Reasoning:
    text, kind, blocks = data.get("text"), data.get("format"), data.get("blocks")
    if isinstance(blocks, list):
        blocks = json.dumps(blocks, ensure_ascii=False)
    return Reasoning(
        text=text if isinstance(text, str) else "",
        format=kind if isinstance(kind, str) else "",
        blocks=blocks if isinstance(blocks, str) else "",
    )


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(datetime, _format_time)
    converter.register_structure_hook(datetime, _parse_time)
    converter.register_unstructure_hook(ToolCall, _unstructure_call)
    converter.register_structure_hook(ToolCall, _structure_call)
    converter.register_unstructure_hook(Reasoning, _unstructure_reasoning)
    converter.register_structure_hook(Reasoning, _structure_reasoning)
    converter.register_unstructure_hook(
        Message,
        make_dict_unstructure_fn(
            Message,
            converter,
            _cattrs_omit_if_default=True,
            role=override(omit_if_default=False),
            content=override(omit_if_default=False),
        ),
    )
    converter.register_structure_hook(Message, make_dict_structure_fn(Message, converter))
    converter.register_unstructure_hook(
        Compaction,
        make_dict_unstructure_fn(
            Compaction,
            converter,
            **{
                name: override(omit_if_default=True)
                for name in ("upto", "summary", "dropped", "elided", "truncated")
            },
        ),
    )
    converter.register_unstructure_hook(
        ConversationMeta,
        make_dict_unstructure_fn(
            ConversationMeta,
            converter,
            model=override(omit_if_default=True),
            provider=override(omit_if_default=True),
            title=override(omit_if_default=True),
            cwd=override(omit_if_default=True),
            cost_usd=override(omit_if_default=True),
        ),
    )
    return converter


converter = _make_converter()


def to_document(conversation: Conversation) -> dict[str, Any]:
    document = {
        "schema_version": SCHEMA_VERSION,
        "meta": converter.unstructure(ConversationMeta.of(conversation)),
        "messages": [converter.unstructure(m) for m in conversation.messages],
    }
    if conversation.compactions:
        document["compactions"] = [converter.unstructure(c) for c in conversation.compactions]
    return document


def meta_from_document(document: Any) -> ConversationMeta:
    _check_version(document)
    return converter.structure(document["meta"], ConversationMeta)


def from_document(document: Any) -> Conversation:
    meta = meta_from_document(document)
    conversation = meta.with_messages(
        converter.structure(document.get("messages", []), list[Message])
    )
    conversation.compactions = converter.structure(
        document.get("compactions", []), list[Compaction]
    )
    return conversation


def _check_version(document: Any) -> None:
    if not isinstance(document, dict) or "meta" not in document:
        raise ValueError("not a conversation document")
    version = document.get("schema_version", 1)
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"schema_version {version} is not supported (this openheim reads {SCHEMA_VERSION})"
        )
