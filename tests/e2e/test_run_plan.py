"""`openheim run` shows the model's plan as a plain checklist on stderr, the answer alone on
stdout."""

from __future__ import annotations

from openheim.testing import Reply
from tests.e2e.conftest import Home


async def test_run_prints_each_plan_as_a_checklist_on_stderr(home: Home) -> None:
    first = [
        {"content": "Look around", "status": "in_progress"},
        {"content": "Answer", "status": "pending", "priority": "high"},
    ]
    second = [{**first[0], "status": "completed"}, {**first[1], "status": "in_progress"}]
    home.llm.script.extend(
        [
            Reply.tool_call("update_plan", {"entries": first}, id="p1"),
            Reply.tool_call("update_plan", {"entries": second}, id="p2"),
            Reply.text("all done"),
        ]
    )
    result = await home.run("run", "do the thing")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "all done\n"
    lines = result.stderr.splitlines()
    plans = [at for at, line in enumerate(lines) if line.startswith("plan (")]
    assert [lines[at : at + 3] for at in plans] == [
        ["plan (0/2 done):", "  ◐ Look around", "  ☐ Answer (high)"],
        ["plan (1/2 done):", "  ☑ Look around", "  ◐ Answer (high)"],
    ]
    assert "\x1b[" not in result.stderr  # plain text
