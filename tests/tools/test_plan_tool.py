"""``update_plan``: what it accepts, the clear errors for what it does not, and what the model
reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openheim.tools.base import ToolContext, ToolKind, ToolRegistry, kind_of
from openheim.tools.common import ArgumentError
from openheim.tools.plan import UpdatePlanTool
from openheim.tools.plan_core import (
    MAX_CONTENT,
    MAX_ENTRIES,
    Plan,
    PlanEntry,
    PlanPriority,
    PlanStatus,
    parse_plan,
    plan_summary,
)

PENDING, ACTIVE, DONE = PlanStatus.PENDING, PlanStatus.IN_PROGRESS, PlanStatus.COMPLETED


def entry(content: str, status: str, **more: Any) -> dict[str, Any]:
    return {"content": content, "status": status, **more}


def test_entries_are_read_in_order_with_medium_priority_by_default() -> None:
    plan = parse_plan(
        {
            "entries": [
                entry("Read the code", "completed"),
                entry("  Write\n the   tool ", "in_progress", priority="high"),
                entry("Add tests", "pending", priority="low", id=3, note="extra keys ignored"),
            ]
        }
    )
    assert plan == (
        PlanEntry("Read the code", DONE, PlanPriority.MEDIUM),
        PlanEntry("Write the tool", ACTIVE, PlanPriority.HIGH),
        PlanEntry("Add tests", PENDING, PlanPriority.LOW),
    )


def test_entries_sent_as_a_json_string_are_read_too() -> None:
    text = json.dumps([entry("One", "pending")])
    assert parse_plan({"entries": text}) == (PlanEntry("One", PENDING),)


def test_an_empty_list_clears_the_plan() -> None:
    assert parse_plan({"entries": []}) == ()
    assert plan_summary(()) == "Plan cleared."


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "Missing 'entries' argument: a list of {content, status} objects"),
        ({"entries": {"content": "x"}}, "Missing 'entries' argument"),
        ({"entries": "not json"}, "'entries' must be a list of {content, status} objects"),
        ({"entries": ["step one"]}, "entries[1] must be an object with 'content' and 'status'"),
        ({"entries": [entry("  ", "pending")]}, "entries[1]: 'content' must be a non-empty"),
        (
            {"entries": [entry("a", "pending"), entry("b", "done")]},
            "entries[2]: 'status' must be one of 'pending', 'in_progress', 'completed', not 'done'",
        ),
        ({"entries": [{"content": "a"}]}, "entries[1]: 'status' must be one of"),
        (
            {"entries": [entry("a", "pending", priority="urgent")]},
            "entries[1]: 'priority' must be one of 'high', 'medium', 'low', not 'urgent'",
        ),
    ],
)
def test_bad_arguments_are_named_precisely(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgumentError) as raised:
        parse_plan(arguments)
    assert str(raised.value).startswith(message)


def test_caps_on_entries_and_their_length() -> None:
    at_cap = [entry(f"step {n}", "pending") for n in range(MAX_ENTRIES)]
    assert len(parse_plan({"entries": at_cap})) == MAX_ENTRIES
    with pytest.raises(ArgumentError, match=f"has 51 items, at most {MAX_ENTRIES}"):
        parse_plan({"entries": [*at_cap, entry("one more", "pending")]})
    assert parse_plan({"entries": [entry("x" * MAX_CONTENT, "pending")]})
    with pytest.raises(ArgumentError, match="entries\\[1\\]: 'content' has 501 characters"):
        parse_plan({"entries": [entry("x" * (MAX_CONTENT + 1), "pending")]})


def test_the_summary_counts_and_nudges_towards_one_entry_in_progress() -> None:
    def plan(*statuses: PlanStatus) -> Plan:
        return tuple(PlanEntry(f"step {n}", status) for n, status in enumerate(statuses))

    assert plan_summary(plan(DONE, ACTIVE, PENDING)) == (
        "Plan updated: 3 entries, 1 completed, 1 in progress, 1 pending."
    )
    assert plan_summary(plan(DONE, DONE)) == "Plan updated: every entry completed."
    two = plan_summary(plan(ACTIVE, ACTIVE, PENDING))
    assert two.startswith("Plan updated: 3 entries, 0 completed, 2 in progress, 1 pending.")
    assert "keep exactly one entry in progress" in two
    assert "mark the entry you work on next in_progress" in plan_summary(plan(DONE, PENDING))


async def test_the_tool_shows_an_accepted_plan_and_only_that() -> None:
    shown: list[Plan] = []

    async def show(entries: Plan) -> None:
        shown.append(entries)

    tool = UpdatePlanTool()
    context = ToolContext(cwd=Path("/"), show_plan=show)
    result = await tool.call({"entries": [entry("Do it", "in_progress")]}, context)
    assert not result.is_error
    assert result.content == "Plan updated: 1 entry, 0 completed, 1 in progress, 0 pending."
    assert shown == [(PlanEntry("Do it", ACTIVE),)]
    # Two in progress is accepted (the result says so); a bad status is not, and shows nothing.
    result = await tool.call({"entries": [entry("a", "in_progress")] * 2}, context)
    assert not result.is_error and "keep exactly one" in result.content
    failed = await tool.call({"entries": [entry("a", "doing")]}, context)
    assert failed.is_error and "'status' must be one of" in failed.content
    assert len(shown) == 2
    # Nobody watching (a library's own context): the tool still answers.
    alone = await tool.call({"entries": []}, ToolContext(cwd=Path("/")))
    assert alone.content == "Plan cleared."


def test_the_tool_is_kind_think_and_describes_itself_for_models() -> None:
    tool = UpdatePlanTool()
    assert kind_of(tool) is ToolKind.THINK
    assert ToolRegistry([tool]).only_reads("update_plan")
    definition = tool.definition
    assert definition.name == "update_plan"
    for phrase in ("replaces the whole plan", "exactly one entry in_progress", "as soon as"):
        assert phrase in definition.description
    items = definition.parameters["properties"]["entries"]["items"]
    assert items["required"] == ["content", "status"]
    assert items["properties"]["status"]["enum"] == [s.value for s in PlanStatus]
    assert items["properties"]["priority"]["enum"] == [p.value for p in PlanPriority]
