"""``update_plan``: the model's to-do list for a task, shown to the user as a checklist.

The tool touches nothing: it checks the list and hands it to whoever shows it (the context's
``show_plan``). The plan itself lives in the conversation as this call's arguments, so a
reloaded session finds its last plan there.
"""

from __future__ import annotations

from typing import Any

from openheim.foundation.models import ToolDefinition, ToolResult
from openheim.tools.base import ToolContext, ToolKind
from openheim.tools.common import ArgumentError, error
from openheim.tools.plan_core import MAX_CONTENT, MAX_ENTRIES, parse_plan, plan_summary

NAME = "update_plan"

_DESCRIPTION = (
    "Keep a to-do list for the current task, which the user sees as a live checklist. Use it "
    "for work of three or more steps, or when the user gives several things to do; skip it "
    "for a question or a one-step change. Each call replaces the whole plan: send every "
    "entry each time, with its current status, in order. Keep exactly one entry in_progress "
    "while you work; mark an entry completed as soon as it is done, not in a batch at the "
    "end; add entries you discover and drop ones that no longer apply. Each entry is one "
    f"short imperative sentence (at most {MAX_CONTENT} characters, {MAX_ENTRIES} entries)."
)


def _parameters() -> dict[str, Any]:
    """A fresh JSON schema per tool: providers may rewrite the one they are given."""
    return {
        "type": "object",
        "properties": {
            "entries": {
                "type": "array",
                "maxItems": MAX_ENTRIES,
                "description": "The whole plan, in the order the steps are done.",
                "items": {
                    "type": "object",
                    "properties": {
                        "content": {
                            "type": "string",
                            "maxLength": MAX_CONTENT,
                            "description": "The step, e.g. 'Add a test for empty input'.",
                        },
                        "status": {
                            "type": "string",
                            "enum": ["pending", "in_progress", "completed"],
                        },
                        "priority": {
                            "type": "string",
                            "enum": ["high", "medium", "low"],
                            "description": "How much the step matters (default medium).",
                        },
                    },
                    "required": ["content", "status"],
                },
            }
        },
        "required": ["entries"],
    }


class UpdatePlanTool:
    """The ``update_plan`` tool; needs no permission in any mode (kind ``think``)."""

    kind = ToolKind.THINK

    def __init__(self) -> None:
        self._definition = ToolDefinition(
            name=NAME, description=_DESCRIPTION, parameters=_parameters()
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            entries = parse_plan(arguments)
        except ArgumentError as exc:
            return error(str(exc))
        if context.show_plan is not None:
            await context.show_plan(entries)
        return ToolResult(plan_summary(entries))
