"""Request validation of the fake Anthropic Messages API (sans-IO).

Requests are refused the way the real API refuses them, so a client that breaks role
alternation, loses a ``tool_result``, or mishandles extended thinking (a budget not below
``max_tokens``; a thinking block changed or dropped from the assistant message of a tool
loop) fails here first. The fake signs the thinking it sends (``thinking_signature``) and
checks the signature of every thinking block it gets back.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

MIN_THINKING_BUDGET = 1024
_THINKING_TYPES = ("thinking", "redacted_thinking")


def thinking_signature(text: str) -> str:
    """The fake's signature of a thinking text: changing the text breaks it, as with Claude."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest()[:24]).decode()


def check_body(body: Any) -> str | None:
    """Why a (JSON-parsed) Messages request would be rejected, or ``None``."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        return "max_tokens: Field required"
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Input should be a positive integer"
    if "system" in body and (problem := check_system(body["system"])) is not None:
        return problem
    if "tools" in body and (problem := check_tools(body["tools"])) is not None:
        return problem
    thinking = body.get("thinking")
    if thinking is not None and (problem := check_thinking(thinking, max_tokens)) is not None:
        return problem
    problem = check_messages(body.get("messages"))
    if problem is None and _thinking_on(thinking):
        problem = check_thinking_first(body["messages"])
    return problem


def check_thinking(thinking: Any, max_tokens: int) -> str | None:
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
        return "thinking.type: Input should be 'enabled' or 'disabled'"
    if thinking["type"] == "disabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        return "thinking.enabled.budget_tokens: Field required"
    if budget < MIN_THINKING_BUDGET:
        return f"thinking.enabled.budget_tokens: Input should be >= {MIN_THINKING_BUDGET}"
    if budget >= max_tokens:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    return None


def _thinking_on(thinking: Any) -> bool:
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


def check_thinking_first(messages: list[dict[str, Any]]) -> str | None:
    """With thinking on, the assistant message of an unfinished tool loop (the last one,
    answered by tool results) must start with its thinking block."""
    for number in range(len(messages) - 1, -1, -1):
        if messages[number]["role"] != "assistant":
            continue
        following = messages[number + 1]["content"] if number + 1 < len(messages) else ""
        if not isinstance(following, list) or not any(
            block.get("type") == "tool_result" for block in following
        ):
            return None
        content = messages[number]["content"]
        first = content[0].get("type") if isinstance(content, list) and content else "text"
        if first in _THINKING_TYPES:
            return None
        return (
            f"messages.{number}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            f"but found `{first}`. When `thinking` is enabled, a final `assistant` message "
            "must start with a thinking block (preceeding the lastmost set of `tool_use` and "
            "`tool_result` blocks). To avoid this requirement, disable `thinking`."
        )
    return None


def check_messages(messages: Any) -> str | None:
    """Why ``messages`` would be rejected by the real API, or ``None``."""
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    previous_role: str | None = None
    pending_tool_uses: tuple[int, list[str]] | None = None  # (message number, ids)
    for number, message in enumerate(messages):
        where = f"messages.{number}"
        if not isinstance(message, dict):
            return f"{where}: Input should be a valid dictionary"
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"{where}.role: Input should be 'user' or 'assistant'"
        if number == 0 and role != "user":
            return f'{where}: the first message must use the "user" role'
        if role == previous_role:
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        previous_role = role
        blocks, problem = _blocks_of(message.get("content"), where)
        if problem is not None:
            return problem
        result_ids = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        if pending_tool_uses is not None:
            asked_in, asked = pending_tool_uses
            missing = [call_id for call_id in asked if call_id not in result_ids]
            if missing:
                return (
                    f"messages.{asked_in}: `tool_use` ids were found without `tool_result` "
                    f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )
        asked_before = pending_tool_uses[1] if pending_tool_uses is not None else []
        unexpected = [call_id for call_id in result_ids if call_id not in asked_before]
        if unexpected:
            return (
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(map(str, unexpected))}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )
        tool_uses = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
        pending_tool_uses = (number, tool_uses) if role == "assistant" and tool_uses else None
    if pending_tool_uses is not None:
        asked_in, asked = pending_tool_uses
        return (
            f"messages.{asked_in}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(asked)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )
    return None


def _blocks_of(content: Any, where: str) -> tuple[list[dict[str, Any]], str | None]:
    if isinstance(content, str):
        if not content.strip():
            return [], f"{where}.content: text content blocks must contain non-whitespace text"
        return [{"type": "text", "text": content}], None
    if not isinstance(content, list):
        return [], f"{where}.content: Input should be a valid string or list"
    for number, block in enumerate(content):
        problem = _check_block(block, f"{where}.content.{number}")
        if problem is not None:
            return [], problem
    return content, None


def _check_block(block: Any, where: str) -> str | None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return f"{where}: Input should be a content block with a type"
    kind = block["type"]
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str) or not text:
            return "messages: text content blocks must be non-empty"
        if not text.strip():
            return "messages: text content blocks must contain non-whitespace text"
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            return f"{where}.tool_use: id and name are required"
        if not isinstance(block.get("input"), dict):
            return f"{where}.tool_use.input: Input should be a valid dictionary"
    elif kind == "image":
        source = block.get("source")
        if not isinstance(source, dict) or source.get("type") != "base64":
            return f"{where}.image.source: Input should be a valid base64 image source"
        if not isinstance(source.get("data"), str) or not isinstance(source.get("media_type"), str):
            return f"{where}.image.source: data and media_type are required"
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            return f"{where}.tool_result.tool_use_id: Field required"
        if isinstance(block.get("content"), list):
            for number, inner in enumerate(block["content"]):
                problem = _check_block(inner, f"{where}.tool_result.content.{number}")
                if problem is not None:
                    return problem
        if "is_error" in block and not isinstance(block["is_error"], bool):
            return f"{where}.tool_result.is_error: Input should be a valid boolean"
    elif kind == "thinking":
        text, signature = block.get("thinking"), block.get("signature")
        if not isinstance(text, str) or not isinstance(signature, str):
            return f"{where}.thinking: thinking and signature are required"
        if signature != thinking_signature(text):
            return f"{where}: Invalid `signature` in `thinking` block"
    elif kind == "redacted_thinking" and (
        not isinstance(block.get("data"), str) or not block["data"]
    ):
        return f"{where}.redacted_thinking.data: Field required"
    return None


def check_tools(tools: Any) -> str | None:
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    for number, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return f"tools.{number}.name: Field required"
        if not isinstance(tool.get("input_schema"), dict):
            return f"tools.{number}.input_schema: Field required"
    return None


def check_system(system: Any) -> str | None:
    if isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid string or list"
    for number, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            return f"system.{number}: Input should be a text block"
        text = block.get("text")
        if not isinstance(text, str) or not text.strip():
            return "system: text content blocks must be non-empty"
    return None
