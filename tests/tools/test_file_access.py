"""read_file and write_file through a ``FileAccess`` (an ACP client's editor) instead of disk."""

from __future__ import annotations

from pathlib import Path

import attrs

from openheim.foundation.models import ToolResult
from openheim.tools.base import FileAccessError, ToolContext
from openheim.tools.files import ReadFileTool, WriteFileTool


@attrs.define
class Editor:
    """A FileAccess with buffers in memory; ``None`` for an operation means "not offered"."""

    buffers: dict[Path, str] = attrs.field(factory=dict)
    reads: bool = True
    writes: bool = True
    asked: list[tuple[Path, int | None, int | None]] = attrs.field(factory=list)

    async def read_text(self, path: Path, line: int | None, limit: int | None) -> str:
        if not self.reads:
            raise NotImplementedError
        self.asked.append((path, line, limit))
        if path not in self.buffers:
            raise FileAccessError("no such buffer")
        lines = self.buffers[path].splitlines(keepends=True)
        start = (line or 1) - 1
        return "".join(lines[start : None if limit is None else start + limit])

    async def write_text(self, path: Path, content: str) -> None:
        if not self.writes:
            raise NotImplementedError
        self.buffers[path] = content


async def test_read_goes_to_the_editor_with_absolute_path_and_range(tmp_path: Path) -> None:
    editor = Editor({tmp_path / "a.txt": "one\ntwo\nthree\n"})
    context = ToolContext(cwd=tmp_path, files=editor)
    result = await ReadFileTool().call({"path": "a.txt", "offset": 2, "limit": 1}, context)
    assert result == ToolResult("two\n")
    assert editor.asked == [(tmp_path / "a.txt", 2, 1)]


async def test_editor_errors_are_tool_errors(tmp_path: Path) -> None:
    context = ToolContext(cwd=tmp_path, files=Editor())
    result = await ReadFileTool().call({"path": "gone.txt"}, context)
    assert result == ToolResult("Cannot read gone.txt: no such buffer", True)


async def test_editor_text_is_capped_like_a_disk_read(tmp_path: Path) -> None:
    text = "".join(f"line {i:03}\n" for i in range(100))  # 9 bytes per line
    context = ToolContext(cwd=tmp_path, files=Editor({tmp_path / "big": text}))
    result = await ReadFileTool(max_bytes=50).call({"path": "big"}, context)
    shown, note = result.content.rsplit("\n", 1)[0], result.content.rsplit("\n", 1)[1]
    assert shown == "".join(f"line {i:03}\n" for i in range(5)).rstrip("\n")
    assert note == (
        "[... truncated at 50 bytes (showing lines 1-5; the editor sent 900 bytes). "
        "Read further with offset=6 and a limit.]"
    )
    empty = ToolContext(cwd=tmp_path, files=Editor({tmp_path / "e": ""}))
    assert await ReadFileTool().call({"path": "e"}, empty) == ToolResult("(empty file)")


async def test_write_goes_to_the_editor_not_the_disk(tmp_path: Path) -> None:
    editor = Editor()
    context = ToolContext(cwd=tmp_path, files=editor)
    result = await WriteFileTool().call({"path": "new.txt", "content": "héllo"}, context)
    assert result == ToolResult("Wrote 6 bytes to new.txt")
    assert editor.buffers == {tmp_path / "new.txt": "héllo"}
    assert not (tmp_path / "new.txt").exists()


async def test_operations_the_editor_does_not_offer_use_the_disk(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("on disk\n")
    context = ToolContext(cwd=tmp_path, files=Editor(reads=False, writes=False))
    assert await ReadFileTool().call({"path": "a.txt"}, context) == ToolResult("on disk\n")
    await WriteFileTool().call({"path": "b.txt", "content": "x"}, context)
    assert (tmp_path / "b.txt").read_text() == "x"
