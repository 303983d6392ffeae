"""Request validation of the fake OpenAI Responses API (sans-IO).

Requests are refused the way the real API refuses them, so a client that sends Chat
Completions shapes (``messages``, nested ``function`` tools, ``tool_calls``), loses a call's
output, or mishandles reasoning with ``store: false`` (a reasoning item sent back without
its encrypted content, with content changed, or with nothing after it) fails here first.
The fake "encrypts" the reasoning it sends (``reasoning_blob``) and checks every reasoning
item it gets back against the item's id, as the real API binds the two.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

INCLUDABLE = frozenset(
    {
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
        "file_search_call.results",
        "message.input_image.image_url",
    }
)
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high"})
SUMMARIES = frozenset({"auto", "concise", "detailed"})
MIN_OUTPUT_TOKENS = 16
_USER_PARTS = frozenset({"input_text", "input_image", "input_file"})
_ASSISTANT_PARTS = frozenset({"output_text", "refusal"})
_MESSAGE_KEYS = frozenset({"type", "role", "content", "id", "status"})
_ITEM_KEYS = {
    "function_call": frozenset({"type", "call_id", "name", "arguments", "id", "status"}),
    "function_call_output": frozenset({"type", "call_id", "output", "id", "status"}),
    "reasoning": frozenset({"type", "id", "summary", "content", "encrypted_content", "status"}),
}


def reasoning_blob(item_id: str) -> str:
    """The fake's encrypted content of reasoning item ``item_id``: bound to the id."""
    digest = hashlib.sha256(item_id.encode()).hexdigest()[:16]
    return base64.b64encode(f"fake-reasoning:{item_id}:{digest}".encode()).decode()


def check_body(body: Any) -> str | None:
    """Why a (JSON-parsed) ``POST /responses`` body would be rejected, or ``None``."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if "messages" in body:
        return "Unsupported parameter: 'messages'. In the Responses API, use 'input'."
    if not isinstance(body.get("model"), str):
        return "Missing required parameter: 'model'."
    for name in ("stream", "store"):
        if name in body and not isinstance(body[name], bool):
            return f"Invalid type for '{name}': expected a boolean."
    if "instructions" in body and not isinstance(body["instructions"], str | None):
        return "Invalid type for 'instructions': expected a string."
    return (
        _check_max_tokens(body.get("max_output_tokens"))
        or _check_include(body.get("include"))
        or _check_reasoning(body.get("reasoning"))
        or _check_tools(body.get("tools"))
        or _check_input(body.get("input"), store=body.get("store", True))
    )


def _check_max_tokens(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < MIN_OUTPUT_TOKENS:
        return (
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {value!r} instead."
        )
    return None


def _check_include(include: Any) -> str | None:
    if include is None:
        return None
    if not isinstance(include, list):
        return "Invalid type for 'include': expected an array of strings."
    for number, value in enumerate(include):
        if value not in INCLUDABLE:
            return f"Invalid value: {value!r}. Supported values are listed in 'include[{number}]'."
    return None


def _check_reasoning(reasoning: Any) -> str | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        return "Invalid type for 'reasoning': expected an object."
    effort, summary = reasoning.get("effort"), reasoning.get("summary")
    if effort is not None and effort not in EFFORTS:
        return f"Invalid value: {effort!r}. Supported values are: {', '.join(sorted(EFFORTS))}."
    if summary is not None and summary not in SUMMARIES:
        return f"Invalid value: {summary!r}. Supported values are: 'auto', 'concise', 'detailed'."
    return None


def _check_tools(tools: Any) -> str | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "Invalid type for 'tools': expected an array of objects."
    for number, tool in enumerate(tools):
        where = f"tools[{number}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            return f"Invalid value for '{where}.type': expected 'function'."
        if "function" in tool:
            return f"Unknown parameter: '{where}.function'."
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            return f"Missing required parameter: '{where}.name'."
        if "parameters" in tool and not isinstance(tool["parameters"], dict | None):
            return f"Invalid type for '{where}.parameters': expected an object."
    return None


def _check_input(items: Any, *, store: Any) -> str | None:
    if isinstance(items, str):
        return None
    if not isinstance(items, list):
        return "Missing required parameter: 'input'."
    calls: list[str] = []
    answered: set[str] = set()
    for number, item in enumerate(items):
        where = f"input[{number}]"
        if not isinstance(item, dict):
            return f"Invalid type for '{where}': expected an object."
        kind = item.get("type", "message")
        if kind == "message":
            problem = _check_message(item, where)
        elif kind in _ITEM_KEYS:
            problem = _unknown_key(item, _ITEM_KEYS[kind], where)
        else:
            problem = f"Invalid value: {kind!r}. Supported values are: 'message', " + (
                "'function_call', 'function_call_output', 'reasoning', ..."
            )
        if problem is None and kind == "function_call":
            problem = _check_call(item, where)
            calls.append(item.get("call_id", ""))
        elif problem is None and kind == "function_call_output":
            call_id = item.get("call_id")
            if call_id not in calls:
                problem = f"No tool call found for function call output with call_id {call_id}."
            elif not isinstance(item.get("output"), str | list):
                problem = f"Missing required parameter: '{where}.output'."
            answered.add(call_id)
        elif problem is None and kind == "reasoning":
            following = items[number + 1] if number + 1 < len(items) else None
            problem = _check_reasoning_item(item, following, store=store)
        if problem is not None:
            return problem
    missing = [call_id for call_id in calls if call_id not in answered]
    if missing:
        return f"No tool output found for function call {missing[0]}."
    return None


def _unknown_key(item: dict[str, Any], known: frozenset[str], where: str) -> str | None:
    extra = sorted(key for key in item if key not in known)
    return f"Unknown parameter: '{where}.{extra[0]}'." if extra else None


def _check_message(item: dict[str, Any], where: str) -> str | None:
    problem = _unknown_key(item, _MESSAGE_KEYS, where)
    if problem is not None:
        return problem
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        return (
            f"Invalid value: {role!r}. Supported values are: 'assistant', 'system', "
            f"'developer', and 'user'. ('{where}.role')"
        )
    content = item.get("content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return f"Missing required parameter: '{where}.content'."
    allowed = _ASSISTANT_PARTS if role == "assistant" else _USER_PARTS
    for number, part in enumerate(content):
        at = f"{where}.content[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            supported = " and ".join(repr(value) for value in sorted(allowed))
            return f"Invalid value: {kind!r}. Supported values are: {supported}. ('{at}.type')"
        if kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url.startswith(("data:", "http://", "https://")):
                return f"Invalid '{at}.image_url': expected a URL or a base64 data URL."
        elif kind != "input_file" and not isinstance(part.get("text"), str):
            return f"Missing required parameter: '{at}.text'."
    return None


def _check_call(item: dict[str, Any], where: str) -> str | None:
    for name in ("call_id", "name", "arguments"):
        if not isinstance(item.get(name), str):
            return f"Missing required parameter: '{where}.{name}'."
    return None


def _check_reasoning_item(item: dict[str, Any], following: Any, *, store: Any) -> str | None:
    item_id = item.get("id")
    encrypted = item.get("encrypted_content")
    if not isinstance(encrypted, str) or not encrypted:
        if store is False:
            return (
                f"Item with id {item_id!r} not found. Items are not persisted when `store` is "
                "set to false. Try again with `store` set to true, or remove this item from "
                "your input."
            )
        return f"Item with id {item_id!r} not found."
    if not isinstance(item_id, str) or encrypted != reasoning_blob(item_id):
        return (
            f"The encrypted content for item {item_id} could not be verified. Reason: "
            "Encrypted content item_id did not match the target item id."
        )
    if not isinstance(item.get("summary"), list):
        return "Missing required parameter: 'summary'."
    if not isinstance(following, dict) or following.get("role") == "user":
        return (
            f"Item {item_id!r} of type 'reasoning' was provided without its required "
            "following item."
        )
    return None
