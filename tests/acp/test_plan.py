"""The model's plan through `openheim acp`, checked by the ACP Python SDK's strict models:
``plan`` updates inside the ``update_plan`` call (kind think, never asked about, even in ask
mode), and the last plan shown again by a ``session/load`` in a new agent process."""

from __future__ import annotations

import json
from typing import Any

from openheim.acp.plan import last_plan, replayed_plan
from openheim.foundation.models import Conversation, Message, Role, ToolCall, ToolResult
from openheim.testing import Reply
from tests.acp.test_sdk_lifecycle import drive, home
from tests.e2e.conftest import Home

__all__ = ["home"]

FIRST = [
    {"content": "Read the failing test", "status": "in_progress", "priority": "high"},
    {"content": "Fix the parser", "status": "pending"},
]
SECOND = [
    {"content": "Read the failing test", "status": "completed", "priority": "high"},
    {"content": "Fix the parser", "status": "in_progress", "priority": "low"},
]


def shown(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries as a client receives them: every field present, medium by default."""
    return [{"priority": "medium", **entry} for entry in entries]


def story(updates: list[dict[str, Any]]) -> list[str]:
    """Each update as ``kind`` or ``kind:status``, the call's and the plan's mixed in order."""
    return [
        u["sessionUpdate"] + (f":{u['status']}" if "status" in u else "")
        for u in updates
        if u["sessionUpdate"] in ("tool_call", "tool_call_update", "plan")
    ]


async def test_plan_updates_pass_the_sdk_live_and_on_load_without_a_question(home: Home) -> None:
    home.write_config()
    home.llm.script.extend(
        [
            Reply.tool_call("update_plan", {"entries": FIRST}, id="plan-1"),
            Reply.tool_call("update_plan", {"entries": SECOND}, id="plan-2"),
            Reply.tool_call("update_plan", {"entries": [{"content": "x"}]}, id="plan-bad"),
            Reply.text("Planned."),
        ]
    )
    out = await drive(home, "plan", str(home.workdir))

    assert out["prompt"]["stopReason"] == "end_turn"
    assert out["asked"] == []  # ask mode, yet the plan tool ran unasked
    updates = out["updates"]
    assert story(updates) == [
        *["tool_call:pending", "tool_call_update:in_progress", "plan"],
        "tool_call_update:completed",
        *["tool_call:pending", "tool_call_update:in_progress", "plan"],
        "tool_call_update:completed",
        *["tool_call:pending", "tool_call_update:in_progress", "tool_call_update:failed"],
    ]
    calls = [u for u in updates if u["sessionUpdate"] == "tool_call"]
    assert {call["kind"] for call in calls} == {"think"}
    assert calls[0]["rawInput"] == {"entries": FIRST}
    plans = [u["entries"] for u in updates if u["sessionUpdate"] == "plan"]
    assert plans == [shown(FIRST), shown(SECOND)]
    # The model was told what it got wrong; the client's plan stayed the second one.
    failed = next(u for u in updates if u.get("status") == "failed")
    assert "'status' must be one of" in failed["rawOutput"]

    reloaded = await drive(home, "reload", str(home.workdir), out["session"])
    replayed = reloaded["updates"]
    assert story(replayed) == ["tool_call:completed", "plan"] * 2 + ["tool_call:failed"]
    last = [u["entries"] for u in replayed if u["sessionUpdate"] == "plan"][-1]
    assert last == shown(SECOND)


def test_a_replay_shows_only_the_plans_the_tool_accepted() -> None:
    good = ToolCall("p", "update_plan", '{"entries": [{"content": "a", "status": "pending"}]}')
    ok = ToolResult("Plan updated")
    assert replayed_plan(good, ok) == [
        {
            "sessionUpdate": "plan",
            "entries": [{"content": "a", "priority": "medium", "status": "pending"}],
        }
    ]
    assert replayed_plan(good, ToolResult("permission denied", is_error=True)) == []
    assert replayed_plan(good, None) == []  # cut off before it answered
    assert replayed_plan(ToolCall("p", "update_plan", "{not json"), ok) == []
    assert replayed_plan(ToolCall("p", "update_plan", '{"entries": 3}'), ok) == []
    assert replayed_plan(ToolCall("r", "read_file", '{"entries": []}'), ok) == []


def test_the_last_accepted_plan_is_the_one_shown_again_after_the_mcp_wait() -> None:
    def call(call_id: str, entries: list[dict[str, Any]]) -> ToolCall:
        return ToolCall(call_id, "update_plan", json.dumps({"entries": entries}))

    good, rejected = call("p1", FIRST), call("p2", SECOND)
    conversation = Conversation(id="c")
    assert last_plan(conversation) is None
    conversation.messages += [
        Message(Role.ASSISTANT, tool_calls=(good,)),
        Message(Role.TOOL, "Plan updated.", tool_call_id="p1", tool_name="update_plan"),
        Message(Role.ASSISTANT, tool_calls=(rejected,)),
        Message(Role.TOOL, "bad", tool_call_id="p2", tool_name="update_plan", is_error=True),
    ]
    assert last_plan(conversation) == {"sessionUpdate": "plan", "entries": shown(FIRST)}
