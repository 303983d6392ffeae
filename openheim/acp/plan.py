"""The model's plan as ACP ``plan`` updates: live from ``PlanUpdated``, and in a
``session/load`` replay from the stored ``update_plan`` calls.

A ``plan`` update always carries the whole list and replaces the client's previous plan, so a
replay that sends each accepted plan in its place leaves the client showing the last one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openheim.foundation.models import ToolCall, ToolResult
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
