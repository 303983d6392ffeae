"""The REPL draws the model's plan as a checklist under its tool line, styled by status on a
terminal and plain when piped."""

from __future__ import annotations

import io

from rich.console import Console

from openheim import render
from openheim.agent.events import PlanUpdated
from openheim.repl.view import ReplView
from openheim.testing import Reply
from openheim.tools.plan_core import PlanEntry, PlanPriority, PlanStatus
from tests.repl.conftest import ReplHome
from tests.repl.test_piped import run_piped

BOLD, DIM = "\x1b[1m", "\x1b[2m"
PLAN = (
    PlanEntry("Read the code", PlanStatus.COMPLETED),
    PlanEntry("Write the fix", PlanStatus.IN_PROGRESS, PlanPriority.HIGH),
    PlanEntry("Run the tests", PlanStatus.PENDING, PlanPriority.LOW),
)


def test_the_checklist_marks_status_and_high_priority() -> None:
    assert render.plan_lines(PLAN) == [
        ("plan (1/3 done):", "bold"),
        ("  ☑ Read the code", "dim"),
        ("  ◐ Write the fix (high)", "bold"),
        ("  ☐ Run the tests", ""),
    ]
    assert render.plan_lines(()) == [("plan cleared", "dim")]


def test_the_view_styles_each_entry_by_its_status() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=100)
    view = ReplView(console, Console(file=io.StringIO()))
    view.show(PlanUpdated(PLAN))
    drawn = out.getvalue()
    assert f"{DIM}  ☑ Read the code" in drawn
    assert f"{BOLD}  ◐ Write the fix (high)" in drawn
    assert "  ☐ Run the tests\n" in drawn


async def test_piped_repl_prints_the_plan_after_the_tool_line(home: ReplHome) -> None:
    entries = [
        {"content": "Read the code", "status": "completed"},
        {"content": "Write the fix", "status": "in_progress", "priority": "high"},
    ]
    home.llm.script.extend(
        [Reply.tool_call("update_plan", {"entries": entries}), Reply.text("on it")]
    )
    result = await run_piped(home, "fix it\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("→ update_plan ")
    assert lines[1:4] == ["plan (1/2 done):", "  ☑ Read the code", "  ◐ Write the fix (high)"]
    assert lines[4].startswith("✓ update_plan (")
    assert lines[5:] == ["on it"]
