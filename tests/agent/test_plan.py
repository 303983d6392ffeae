"""The loop and the plan tool: an accepted plan is a ``PlanUpdated`` event inside its call,
a rejected one is none, and the plan stays in the conversation as the call's arguments."""

from __future__ import annotations

import json

from openheim.agent.events import PlanUpdated, StopReason, ToolCallFinished, ToolCallStarted
from openheim.foundation.models import Role, ToolCall
from openheim.tools.plan import UpdatePlanTool
from openheim.tools.plan_core import PlanEntry, PlanPriority, PlanStatus
from tests.agent.test_loop import ScriptedProvider, answer, calls, run

ENTRIES = [
    {"content": "Read the code", "status": "completed"},
    {"content": "Fix the bug", "status": "in_progress", "priority": "high"},
]


async def test_an_accepted_plan_is_an_event_between_its_calls_start_and_finish() -> None:
    good = ToolCall("p-1", "update_plan", json.dumps({"entries": ENTRIES}))
    bad = ToolCall("p-2", "update_plan", json.dumps({"entries": [{"content": "x"}]}))
    provider = ScriptedProvider([calls(good), calls(bad), answer("done")])
    conversation, events, finished = await run(provider, tools=(UpdatePlanTool(),))

    assert finished.stop_reason is StopReason.END_TURN
    plans = [event for event in events if isinstance(event, PlanUpdated)]
    assert plans == [
        PlanUpdated(
            (
                PlanEntry("Read the code", PlanStatus.COMPLETED, PlanPriority.MEDIUM),
                PlanEntry("Fix the bug", PlanStatus.IN_PROGRESS, PlanPriority.HIGH),
            )
        )
    ]
    at = events.index(plans[0])
    assert events[at - 1] == ToolCallStarted(good)
    finished_good = events[at + 1]
    assert isinstance(finished_good, ToolCallFinished) and finished_good.call == good
    assert not finished_good.result.is_error
    finished_bad = next(e for e in events if isinstance(e, ToolCallFinished) and e.call.id == "p-2")
    assert finished_bad.result.is_error
    assert "'status' must be one of" in finished_bad.result.content
    # The plan lives on in the history: the call with its arguments, and the model's receipt.
    tools = [m for m in conversation.messages if m.role is Role.TOOL]
    assert tools[0].content == "Plan updated: 2 entries, 1 completed, 1 in progress, 0 pending."
    stored = [c for m in conversation.messages for c in m.tool_calls]
    assert stored[0] == good
