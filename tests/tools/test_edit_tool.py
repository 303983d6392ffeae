"""edit_file: exact replacements, all or nothing, line endings and mode kept, with a diff."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from openheim.foundation.models import FileDiff, Location
from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.quota import WorkspaceQuota
from openheim.sandbox.sandbox import NoBackend, Sandbox
from openheim.tools.base import ToolContext
from openheim.tools.edit import EditFileTool
from openheim.tools.edit_core import Edit, EditFailed, apply_edits, line_ending
from tests.tools.test_file_access import Editor


def context(cwd: Path, **kwargs: object) -> ToolContext:
    return ToolContext(cwd=cwd, **kwargs)  # type: ignore[arg-type]


async def edit(cwd: Path, **arguments: object) -> tuple[str, bool]:
    result = await EditFileTool().call(dict(arguments), context(cwd))
    return result.content, result.is_error


async def test_one_edit_answers_with_a_unified_diff_and_structured_diff(tmp_path: Path) -> None:
    target = tmp_path / "a.py"
    target.write_text("def f():\n    return 1\n\nprint(f())\n")
    result = await EditFileTool().call(
        {"path": "a.py", "old_string": "return 1", "new_string": "return 2"}, context(tmp_path)
    )
    assert not result.is_error
    assert result.content == (
        "Edited a.py (1 replacement):\n"
        "--- a/a.py\n+++ b/a.py\n@@ -1,4 +1,4 @@\n def f():\n"
        "-    return 1\n+    return 2\n \n print(f())"
    )
    assert target.read_text() == "def f():\n    return 2\n\nprint(f())\n"
    assert result.diffs == (
        FileDiff(str(target), "def f():\n    return 1\n\nprint(f())\n", target.read_text()),
    )
    assert result.locations == (Location(str(target), 2),)


async def test_no_match_and_many_matches_say_so_and_change_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x = 1\nx = 1\n")
    assert await edit(tmp_path, path="a.txt", old_string="y", new_string="z") == (
        "old_string was not found in a.txt; read the file and copy the text exactly, "
        "whitespace and indentation included",
        True,
    )
    text, failed = await edit(tmp_path, path="a.txt", old_string="x = 1", new_string="x = 2")
    assert failed and text.startswith("old_string matches 2 times in a.txt;")
    assert "replace_all" in text
    assert (tmp_path / "a.txt").read_text() == "x = 1\nx = 1\n"
    text, failed = await edit(
        tmp_path, path="a.txt", old_string="x = 1", new_string="x = 2", replace_all=True
    )
    assert not failed and text.startswith("Edited a.txt (2 replacements):")
    assert (tmp_path / "a.txt").read_text() == "x = 2\nx = 2\n"


async def test_several_edits_apply_in_order_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("alpha\nbeta\n")
    edits = [
        {"old_string": "alpha", "new_string": "gamma"},
        {"old_string": "gamma\nbeta", "new_string": "delta"},  # sees the first edit's result
    ]
    text, failed = await edit(tmp_path, path="a.txt", edits=edits)
    assert not failed and target.read_text() == "delta\n"
    text, failed = await edit(
        tmp_path,
        path="a.txt",
        edits=[
            {"old_string": "delta", "new_string": "x"},
            {"old_string": "nope", "new_string": "y"},
        ],
    )
    assert failed and text.startswith("edit 2 of 2: old_string was not found in a.txt")
    assert target.read_text() == "delta\n"


async def test_crlf_files_stay_crlf_and_the_mode_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "win.txt"
    target.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    target.chmod(0o751)
    text, failed = await edit(tmp_path, path="win.txt", old_string="one\ntwo", new_string="1\n2")
    assert not failed
    assert target.read_bytes() == b"1\r\n2\r\nthree\r\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o751
    assert "\r" not in text  # the model's diff is in LF


def test_the_pure_core() -> None:
    assert line_ending("a\r\nb\r\nc\n") == "\r\n" and line_ending("a\nb\n") == "\n"
    applied = apply_edits("a\nb\nc\n", [Edit("c", "C"), Edit("a", "A")], "f")
    assert (applied.text, applied.first_line, applied.replacements) == ("A\nb\nC\n", 1, 2)
    with pytest.raises(EditFailed, match="matches 2 times"):
        apply_edits("aa", [Edit("a", "b")], "f")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "a.txt", "new_string": "x"}, "Missing 'old_string' argument"),
        ({"path": "a.txt", "old_string": "a", "new_string": "a"}, "are the same"),
        ({"path": "a.txt", "edits": []}, "'edits' must be a non-empty array"),
        ({"path": "a.txt", "edits": [{"old_string": "a"}], "old_string": "a"}, "not both"),
    ],
)
async def test_bad_arguments_are_one_line_errors(
    tmp_path: Path, arguments: dict[str, object], message: str
) -> None:
    result = await EditFileTool().call(arguments, context(tmp_path))
    assert result.is_error and message in result.content and "\n" not in result.content


async def test_binary_missing_and_folders_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\x00\x01abc")
    (tmp_path / "dir").mkdir()
    assert await edit(tmp_path, path="bin", old_string="abc", new_string="x") == (
        "bin: binary file; not edited",
        True,
    )
    assert await edit(tmp_path, path="gone.txt", old_string="a", new_string="b") == (
        "File not found: gone.txt; create new files with write_file",
        True,
    )
    assert await edit(tmp_path, path="dir", old_string="a", new_string="b") == (
        "dir is a directory, not a file",
        True,
    )


async def test_outside_the_workspace_is_refused_by_the_name_sent(tmp_path: Path) -> None:
    work, other = tmp_path / "work", tmp_path / "other"
    work.mkdir()
    other.mkdir()
    (other / "f.txt").write_text("secret")
    os.symlink(other, work / "link")
    policy = SandboxPolicy(writable=(work,), readable=(), read_anywhere=False, hidden=())
    confined = context(work, sandbox=Sandbox(NoBackend(), policy))
    for path in ("../other/f.txt", "link/f.txt", str(other / "f.txt")):
        result = await EditFileTool().call(
            {"path": path, "old_string": "secret", "new_string": "x"}, confined
        )
        assert result.content == f"Permission denied: {path} is outside the workspace"
    assert (other / "f.txt").read_text() == "secret"


async def test_the_workspace_quota_holds(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("small")
    policy = SandboxPolicy(writable=(tmp_path,), readable=(), read_anywhere=False, hidden=())
    quota = WorkspaceQuota(tmp_path, limit=20)
    confined = context(tmp_path, sandbox=Sandbox(NoBackend(), policy, quota=quota))
    result = await EditFileTool().call(
        {"path": "a.txt", "old_string": "small", "new_string": "x" * 100}, confined
    )
    assert result.is_error and "quota of 20 bytes" in result.content
    assert (tmp_path / "a.txt").read_text() == "small"


async def test_an_editor_buffer_is_edited_instead_of_the_disk(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("on disk\n")
    editor = Editor({target: "unsaved buffer\n"})
    result = await EditFileTool().call(
        {"path": "a.txt", "old_string": "unsaved", "new_string": "edited"},
        context(tmp_path, files=editor),
    )
    assert not result.is_error
    assert editor.buffers[target] == "edited buffer\n"
    assert target.read_text() == "on disk\n"
    assert result.diffs == (FileDiff(str(target), "unsaved buffer\n", "edited buffer\n"),)


def test_a_result_with_diffs_is_stored_as_its_text_alone() -> None:
    from openheim.foundation.models import Conversation, Message, ToolCall, ToolResult
    from openheim.store.codec import from_document, to_document

    call = ToolCall("c1", "edit_file", "{}")
    result = ToolResult(
        "Edited a", diffs=(FileDiff("/w/a", "x", "y"),), locations=(Location("/w/a", 1),)
    )
    conversation = Conversation(id="c")
    conversation.append(Message.assistant(None, (call,)))
    conversation.append(Message.tool(call, result))
    document = to_document(conversation)
    assert document["messages"][1] == {
        "role": "tool",
        "content": "Edited a",
        "tool_call_id": "c1",
        "tool_name": "edit_file",
    }
    assert from_document(document).messages == conversation.messages
