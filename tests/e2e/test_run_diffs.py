"""`openheim run` and the REPL show an edit's diff under its tool line."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from openheim import render
from openheim.agent.events import ToolCallFinished
from openheim.foundation.models import FileDiff, ToolCall, ToolResult
from openheim.repl.view import ReplView
from openheim.testing import Reply
from tests.e2e.conftest import Home


async def test_run_prints_the_diff_of_an_edit_on_stderr(home: Home) -> None:
    (home.workdir / "notes.txt").write_text("a\nold\nb\n")
    home.llm.script.extend(
        [
            Reply.tool_call(
                "edit_file", {"path": "notes.txt", "old_string": "old", "new_string": "new"}
            ),
            Reply.tool_call("write_file", {"path": "fresh.txt", "content": "hi\n"}),
            Reply.text("edited"),
        ]
    )
    result = await home.run("run", "--yes", "edit it")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "edited\n"
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("✓ edit_file"))
    assert lines[at + 1 : at + 8] == [
        "--- a/notes.txt",
        "+++ b/notes.txt",
        "@@ -1,3 +1,3 @@",
        " a",
        "-old",
        "+new",
        " b",
    ]
    at = next(i for i, line in enumerate(lines) if line.startswith("✓ write_file"))
    assert lines[at + 1 : at + 5] == ["--- /dev/null", "+++ b/fresh.txt", "@@ -0,0 +1 @@", "+hi"]
    assert "\x1b[" not in result.stderr  # plain text


def test_the_repl_colours_a_diff(tmp_path: Path) -> None:
    out = Console(record=True, force_terminal=True, color_system="standard", width=80)
    view = ReplView(out, Console(record=True))
    path = str(tmp_path / "f.txt")
    result = ToolResult("Edited f.txt", diffs=(FileDiff(path, "x\n", "y\n"),))
    call = ToolCall("c1", "edit_file", "{}")
    view.show(ToolCallFinished(call, result, 0.01))
    text = out.export_text(styles=True)
    assert "\x1b[31m-x" in text and "\x1b[32m+y" in text
    assert render.diff_lines(result, tmp_path)[:2] == ["--- a/f.txt", "+++ b/f.txt"]
    failed = ToolResult("no", is_error=True, diffs=result.diffs)
    assert render.diff_lines(failed) == []
