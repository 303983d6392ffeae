"""Recovering tool calls that a local model wrote as plain JSON text.

Ollama, vLLM and LM Studio models often answer ``{"name": "read_file", "arguments": {...}}`` as
content instead of a structured tool call. Treating that as a call is only safe when the text
is *exactly* such a call naming a registered tool, so anything else is left as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container
from typing import Any

from openheim.foundation.models import ToolCall

_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)
_CALL_KEYS = {"name", "arguments", "parameters", "type", "id"}


def recover_tool_calls(text: str, known: Container[str], id_prefix: str) -> tuple[ToolCall, ...]:
    """The calls ``text`` consists of, or ``()`` when it is anything but tool-call JSON."""
    body = text.strip()
    fenced = _FENCE.fullmatch(body)
    if fenced:
        body = fenced.group(1)
    if not body.startswith(("{", "[")):
        return ()
    try:
        value = json.loads(body)
    except ValueError:
        return ()
    items = value if isinstance(value, list) else [value]
    calls = []
    for position, item in enumerate(items):
        call = _as_call(item, known, f"{id_prefix}_{position}")
        if call is None:
            return ()
        calls.append(call)
    return tuple(calls)


def _as_call(item: Any, known: Container[str], call_id: str) -> ToolCall | None:
    if not isinstance(item, dict):
        return None
    # OpenAI's own shape, {"type": "function", "function": {...}}, appears too.
    if isinstance(item.get("function"), dict) and set(item) <= {"type", "function", "id"}:
        item = item["function"]
    if not set(item) <= _CALL_KEYS or "name" not in item:
        return None
    name = item["name"]
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return None
    if not isinstance(name, str) or name not in known or not isinstance(arguments, dict):
        return None
    return ToolCall(call_id, name, json.dumps(arguments))
