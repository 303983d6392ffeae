"""read_file and write_file against real files in tmp_path."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import attrs
import pytest

from openheim.foundation.models import ToolResult
from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.sandbox import NoBackend, Sandbox
from openheim.tools.base import ToolContext
from openheim.tools.files import ReadFileTool, WriteFileTool

needs_non_root = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permission bits"
)


async def read(cwd: Path, tool: ReadFileTool | None = None, **arguments: object) -> ToolResult:
    return await (tool or ReadFileTool()).call(arguments, ToolContext(cwd=cwd))


async def write(cwd: Path, **arguments: object) -> ToolResult:
    return await WriteFileTool().call(arguments, ToolContext(cwd=cwd))


# --- read_file ---------------------------------------------------------------------------------


async def test_read_definition() -> None:
    definition = ReadFileTool().definition
    assert definition.name == "read_file"
    assert definition.parameters["required"] == ["path"]


async def test_read_whole_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("héllo\nworld\n")
    assert await read(tmp_path, path=str(tmp_path / "a.txt")) == ToolResult("héllo\nworld\n")


async def test_read_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("x")
    assert await read(tmp_path, path="sub/a.txt") == ToolResult("x")


async def test_read_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "a.txt").write_text("home")
    assert await read(Path("/"), path="~/a.txt") == ToolResult("home")


async def test_read_offset_and_limit(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    result = await read(tmp_path, path="a.txt", offset=3, limit=2)
    assert result == ToolResult("line 3\nline 4\n")
    assert await read(tmp_path, path="a.txt", offset=10.0) == ToolResult("line 10\n")
    assert await read(tmp_path, path="a.txt", limit=1) == ToolResult("line 1\n")


async def test_read_offset_past_end(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\ntwo")
    result = await read(tmp_path, path="a.txt", offset=5)
    assert not result.is_error
    assert "past the end" in result.content
    assert "has 2 lines" in result.content


@pytest.mark.parametrize(
    "arguments",
    [{}, {"path": ""}, {"path": 3}, {"path": "a", "offset": 0}, {"path": "a", "limit": "x"}],
)
async def test_read_bad_arguments(tmp_path: Path, arguments: dict[str, object]) -> None:
    result = await read(tmp_path, **arguments)
    assert result.is_error
    assert "path" in result.content or "offset" in result.content or "limit" in result.content


async def test_read_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert await read(tmp_path, path="empty") == ToolResult("(empty file)")


async def test_read_missing(tmp_path: Path) -> None:
    result = await read(tmp_path, path="nope.txt")
    assert result == ToolResult("File not found: nope.txt", is_error=True)


async def test_read_directory(tmp_path: Path) -> None:
    result = await read(tmp_path, path=".")
    assert result.is_error
    assert "is a directory" in result.content


async def test_read_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    result = await read(tmp_path, path="pipe")
    assert result.is_error
    assert "not a regular file" in result.content


@needs_non_root
async def test_read_permission_denied(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0)
    result = await read(tmp_path, path="secret")
    assert result.is_error
    assert "Permission denied" in result.content


async def test_read_binary_with_nul(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"abc\0def")
    result = await read(tmp_path, path="bin")
    assert result == ToolResult("bin: binary file, 7 bytes; not shown", True)


async def test_read_invalid_utf8_is_binary(tmp_path: Path) -> None:
    (tmp_path / "latin1").write_bytes("café\n".encode("latin-1"))
    result = await read(tmp_path, path="latin1")
    assert result.is_error
    assert "binary file, 5 bytes; not shown" in result.content


async def test_read_over_cap_and_continue(tmp_path: Path) -> None:
    lines = [f"{n:04d}\n" for n in range(1, 101)]  # 5 bytes each
    (tmp_path / "big.txt").write_text("".join(lines))
    tool = ReadFileTool(max_bytes=52)
    result = await read(tmp_path, tool, path="big.txt")
    assert not result.is_error
    text, note = result.content.rsplit("\n", 1)
    assert text + "\n" == "".join(lines[:10])
    assert "truncated at 52 bytes" in note
    assert "showing lines 1-10" in note
    assert "500 bytes" in note
    assert "offset=11" in note
    following = await read(tmp_path, tool, path="big.txt", offset=11, limit=2)
    assert following == ToolResult("0011\n0012\n")


async def test_read_single_line_over_cap(tmp_path: Path) -> None:
    (tmp_path / "long").write_text("é" * 100 + "\nnext\n")  # 2 bytes per character
    result = await read(tmp_path, ReadFileTool(max_bytes=11), path="long")
    assert not result.is_error
    text, note = result.content.split("\n", 1)
    assert text == "é" * 5  # 11 bytes cut inside a character: the half is dropped
    assert "line 1 is longer than that and was cut" in note
    assert "offset=2" in note


# --- write_file --------------------------------------------------------------------------------


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def leftovers(directory: Path) -> list[str]:
    return [name for name in names(directory) if name.endswith(".tmp")]


async def test_write_definition() -> None:
    definition = WriteFileTool().definition
    assert definition.name == "write_file"
    assert definition.parameters["required"] == ["path", "content"]


async def test_write_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    result = await write(tmp_path, path=str(target), content="héllo")
    assert result == ToolResult(f"Wrote 6 bytes to {target}")
    assert target.read_text() == "héllo"
    assert leftovers(target.parent) == []


async def test_write_relative_to_cwd(tmp_path: Path) -> None:
    result = await write(tmp_path, path="sub/x.txt", content="")
    assert result == ToolResult("Wrote 0 bytes to sub/x.txt")
    assert (tmp_path / "sub" / "x.txt").read_text() == ""


async def test_write_replaces_atomically_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "script.sh"
    target.write_text("old content that is longer")
    target.chmod(0o751)
    old_inode = target.stat().st_ino
    result = await write(tmp_path, path="script.sh", content="new")
    assert not result.is_error
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    assert target.stat().st_ino != old_inode  # a new file was renamed into place
    assert names(tmp_path) == ["script.sh"]


async def test_write_new_file_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        await write(tmp_path, path="f", content="x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o640


async def test_write_through_symlink(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    result = await write(tmp_path, path="link.txt", content="new")
    assert not result.is_error
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "real.txt").read_text() == "new"


async def test_write_to_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    result = await write(tmp_path, path="d", content="x")
    assert result == ToolResult("d is a directory, not a file", is_error=True)
    assert leftovers(tmp_path) == []


async def test_write_under_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = await write(tmp_path, path="f/g.txt", content="x")
    assert result.is_error
    assert "not a directory" in result.content


async def test_write_failure_leaves_original_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("original")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("openheim.foundation.fsutil.os.fsync", full_disk)
    result = await write(tmp_path, path="keep.txt", content="new")
    assert result == ToolResult("Cannot write keep.txt: No space left on device", is_error=True)
    assert target.read_text() == "original"
    assert names(tmp_path) == ["keep.txt"]


@needs_non_root
async def test_write_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = await write(tmp_path, path="locked/f.txt", content="x")
    finally:
        locked.chmod(0o755)
    assert result.is_error
    assert "Permission denied" in result.content


@needs_non_root
async def test_write_read_only_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ro").write_text("x")
    (tmp_path / "ro").chmod(0o444)
    result = await write(tmp_path, path="ro", content="y")
    assert result.is_error
    assert (tmp_path / "ro").read_text() == "x"


@pytest.mark.parametrize("arguments", [{}, {"path": "a"}, {"path": "a", "content": 1}])
async def test_write_bad_arguments(tmp_path: Path, arguments: dict[str, object]) -> None:
    result = await write(tmp_path, **arguments)
    assert result.is_error
    assert "Missing" in result.content
    assert not (tmp_path / "a").exists()


# --- the session's sandbox policy --------------------------------------------------------------


@pytest.fixture
def tenants(tmp_path: Path) -> tuple[Path, Path]:
    """alice's workspace beside bob's, with links out of alice's."""
    base = tmp_path.resolve()
    alice, bob = base / "alice", base / "bob"
    (alice / "sub").mkdir(parents=True)
    (alice / "a.txt").write_text("alice")
    bob.mkdir()
    (bob / "secret.txt").write_text("bob-secret")
    (alice / "to_bob").symlink_to(bob)
    (alice / "bob_file").symlink_to(bob / "secret.txt")
    (alice / "bob_new").symlink_to(bob / "new.txt")
    (alice / "inside").symlink_to("sub")
    return alice, bob


def confined(
    alice: Path, *, readable: tuple[Path, ...] = (), read_anywhere: bool = False
) -> ToolContext:
    policy = SandboxPolicy(
        writable=(alice,),
        readable=readable,
        read_anywhere=read_anywhere,
        hidden=(alice / "sub" / "hidden",),
    )
    return ToolContext(cwd=alice, sandbox=Sandbox(NoBackend(), policy))


OUT_OF_ALICE = ["../bob/secret.txt", "{bob}/secret.txt", "to_bob/secret.txt", "bob_file", ".."]


@pytest.mark.parametrize("raw", OUT_OF_ALICE)
async def test_a_tenant_reads_nothing_outside(tenants: tuple[Path, Path], raw: str) -> None:
    alice, bob = tenants
    path = raw.format(bob=bob)
    result = await ReadFileTool().call({"path": path}, confined(alice))
    assert result == ToolResult(
        f"Permission denied: {path} is outside the workspace", is_error=True
    )


@pytest.mark.parametrize("raw", [*OUT_OF_ALICE, "bob_new", "../bob/new/deeper.txt"])
async def test_a_tenant_writes_nothing_outside(tenants: tuple[Path, Path], raw: str) -> None:
    alice, bob = tenants
    path = raw.format(bob=bob)
    result = await WriteFileTool().call({"path": path, "content": "x"}, confined(alice))
    assert result == ToolResult(
        f"Permission denied: {path} is outside the workspace", is_error=True
    )
    assert names(bob) == ["secret.txt"]
    assert (bob / "secret.txt").read_text() == "bob-secret"


async def test_a_tenant_works_inside(tenants: tuple[Path, Path]) -> None:
    alice, _ = tenants
    context = confined(alice)
    assert await ReadFileTool().call({"path": "a.txt"}, context) == ToolResult("alice")
    result = await WriteFileTool().call({"path": "inside/new/n.txt", "content": "n"}, context)
    assert result == ToolResult("Wrote 1 bytes to inside/new/n.txt")
    assert (alice / "sub" / "new" / "n.txt").read_text() == "n"
    result = await ReadFileTool().call({"path": str(alice / "sub/new/n.txt")}, context)
    assert result == ToolResult("n")
    # Messages name the file as the model sent it, never where the workspace lives.
    missing = await ReadFileTool().call({"path": "inside/gone.txt"}, context)
    assert missing == ToolResult("File not found: inside/gone.txt", is_error=True)
    folder = await WriteFileTool().call({"path": "inside", "content": "x"}, context)
    assert folder == ToolResult("inside is a directory, not a file", is_error=True)


async def test_hidden_paths_are_refused(tenants: tuple[Path, Path]) -> None:
    alice, _ = tenants
    (alice / "sub" / "hidden").mkdir()
    (alice / "sub" / "hidden" / "k").write_text("key")
    for context in (confined(alice), confined(alice, read_anywhere=True)):
        result = await ReadFileTool().call({"path": "inside/hidden/k"}, context)
        assert result.is_error
        assert result.content.startswith("Permission denied: inside/hidden/k is ")
        result = await WriteFileTool().call({"path": "sub/hidden/k", "content": "x"}, context)
        assert result.is_error
    assert (alice / "sub" / "hidden" / "k").read_text() == "key"


async def test_readable_roots_are_read_only(tenants: tuple[Path, Path]) -> None:
    alice, bob = tenants
    context = confined(alice, readable=(bob,))
    result = await ReadFileTool().call({"path": "to_bob/secret.txt"}, context)
    assert result == ToolResult("bob-secret")
    result = await WriteFileTool().call({"path": "to_bob/secret.txt", "content": "x"}, context)
    assert result.content == "Permission denied: to_bob/secret.txt is outside the workspace"


async def test_read_anywhere_reads_outside_but_writes_inside(tenants: tuple[Path, Path]) -> None:
    alice, _ = tenants
    context = confined(alice, read_anywhere=True)
    assert await ReadFileTool().call({"path": "../bob/secret.txt"}, context) == ToolResult(
        "bob-secret"
    )
    result = await WriteFileTool().call({"path": "../bob/x", "content": "x"}, context)
    assert result.content == "Permission denied: ../bob/x is outside the workspace"


@pytest.mark.parametrize("raw", ["a\0b", "\ud800"])
async def test_impossible_names(tenants: tuple[Path, Path], raw: str) -> None:
    alice, _ = tenants
    for tool, arguments in (
        (ReadFileTool(), {"path": raw}),
        (WriteFileTool(), {"path": raw, "content": "x"}),
    ):
        result = await tool.call(arguments, confined(alice))
        assert result.is_error
        assert result.content.startswith("Invalid path ")
        result.content.encode("utf-8")  # printable: no NUL, no lone surrogate


@attrs.define
class Editor:
    asked: list[Path] = attrs.field(factory=list)

    async def read_text(self, path: Path, line: int | None, limit: int | None) -> str:
        self.asked.append(path)
        return "from the editor"

    async def write_text(self, path: Path, content: str) -> None:
        self.asked.append(path)


async def test_the_editor_is_not_asked_about_paths_outside(tenants: tuple[Path, Path]) -> None:
    alice, _ = tenants
    editor = Editor()
    context = attrs.evolve(confined(alice), files=editor)
    result = await ReadFileTool().call({"path": "../bob/secret.txt"}, context)
    assert result.content == "Permission denied: ../bob/secret.txt is outside the workspace"
    result = await WriteFileTool().call({"path": "to_bob/new.txt", "content": "x"}, context)
    assert result.content == "Permission denied: to_bob/new.txt is outside the workspace"
    assert editor.asked == []
    # Inside, even a file or folder only the editor knows of is its to answer.
    assert await ReadFileTool().call({"path": "unsaved/u.txt"}, context) == ToolResult(
        "from the editor"
    )
    await WriteFileTool().call({"path": "new/dir/n.txt", "content": "x"}, context)
    assert editor.asked == [alice / "unsaved/u.txt", alice / "new/dir/n.txt"]
    assert not (alice / "new").exists()
