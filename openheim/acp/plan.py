"""The model's plan as ACP ``plan`` updates: live from ``PlanUpdated``, and in a
``session/load`` replay from the stored ``update_plan`` calls.

A ``plan`` update always carries the whole list and replaces the client's previous plan, so a
replay that sends each accepted plan in its place leaves the client showing the last one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openheim.foundation.models import Conversation, Role, ToolCall, ToolResult
from openheim.tools.common import ArgumentError
from openheim.tools.plan import NAME
from openheim.tools.plan_core import PlanEntry, parse_plan


def plan_update(entries: Sequence[PlanEntry]) -> dict[str, Any]:
    """``{"sessionUpdate": "plan", "entries": [{content, priority, status}]}``."""
    return {
        "sessionUpdate": "plan",
        "entries": [
            {
                "content": entry.content,
                "priority": entry.priority.value,
                "status": entry.status.value,
            }
            for entry in entries
        ],
    }


def replayed_plan(call: ToolCall, result: ToolResult | None) -> list[dict[str, Any]]:
    """The plan a stored call showed: one update after a successful ``update_plan``, else
    none (a failed call showed nothing live either)."""
    if call.name != NAME or result is None or result.is_error:
        return []
    try:
        entries = parse_plan(call.parsed_arguments())
    except (ArgumentError, ValueError):
        return []
    return [plan_update(entries)]


def last_plan(conversation: Conversation) -> dict[str, Any] | None:
    """The plan the client should show now: the last accepted one in the conversation. The
    wait for MCP servers, drawn as a plan too, replaces it; this puts it back afterwards."""
    failed = {
        message.tool_call_id
        for message in conversation.messages
        if message.role is Role.TOOL and message.is_error
    }
    for message in reversed(conversation.messages):
        for call in reversed(message.tool_calls):
            if call.name != NAME or call.id in failed:
                continue
            try:
                return plan_update(parse_plan(call.parsed_arguments()))
            except (ArgumentError, ValueError):
                continue
    return None
