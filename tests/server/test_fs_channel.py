"""FsChannel against real files in tmp_path: CRUD, shapes, ids, limits, escapes, bad payloads."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from openheim.server.fs.channel import (
    OUTSIDE_MESSAGE,
    FsChannel,
    FsLimits,
    frame_error,
    greeting,
    parse_request,
)

Message = dict[str, Any]


class Outbox:
    """Stands in for the connection's writer: everything the channel sends, in order."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[Message](1000)
        self.history: list[Message] = []
        self._read = 0  # messages before this index were handed out already

    async def send(self, message: Message) -> None:
        await self._send.send(message)

    def _pull(self) -> None:
        while True:
            try:
                self.history.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                return

    def take_all(self) -> list[Message]:
        """The messages not handed out yet."""
        self._pull()
        new = self.history[self._read :]
        self._read = len(self.history)
        return new

    async def wait_for(self, predicate: Callable[[Message], bool]) -> Message:
        """The next message that matches, skipping others; callers bound the wait."""
        while True:
            self._pull()
            for index in range(self._read, len(self.history)):
                if predicate(self.history[index]):
                    self._read = index + 1
                    return self.history[index]
            self._read = len(self.history)
            self.history.append(await self._receive.receive())


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    return tmp_path / "outside"


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("alpha")
    (root / "etc_link").symlink_to("/etc")
    (root / "out_dir").symlink_to(outside)
    (root / "out_file").symlink_to(outside / "secret.txt")
    (root / "dangling").symlink_to(outside / "missing.txt")
    return root.resolve()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
async def channel(root: Path, outbox: Outbox, nursery: trio.Nursery) -> AsyncIterator[FsChannel]:
    channel = FsChannel(root, outbox.send, nursery)
    yield channel
    await channel.close()


async def ask(channel: FsChannel, outbox: Outbox, data: Any) -> Message:
    """One request, one reply (no watch is running in these tests)."""
    await channel.handle(data)
    replies = outbox.take_all()
    assert len(replies) == 1, replies
    return replies[0]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(directory.rglob("*"))
    }


def test_greeting_and_frame_error() -> None:
    assert greeting() == {"type": "connected", "message": "Connected to Openheim"}
    assert frame_error("expected value at line 1 column 1") == {
        "type": "error",
        "message": "Invalid payload: expected value at line 1 column 1",
    }


# --- CRUD ---------------------------------------------------------------------------------------


async def test_crud_round_trip(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    async def do(**data: Any) -> Message:
        return await ask(channel, outbox, data)

    assert await do(action="mkdir", path="docs") == {"type": "mkdir_success", "path": "docs"}
    assert await do(action="write", path="docs/n.md", content="héllo") == {
        "type": "write_success",
        "path": "docs/n.md",
    }
    assert await do(action="read", path="docs/n.md") == {
        "type": "file_content",
        "path": "docs/n.md",
        "content": "héllo",
    }
    assert await do(action="rename", **{"from": "docs/n.md", "to": "docs/m.md"}) == {
        "type": "rename_success",
        "from": "docs/n.md",
        "to": "docs/m.md",
    }
    listing = await do(action="list", path="docs")
    assert [e["name"] for e in listing["entries"]] == ["m.md"]
    assert await do(action="delete", path="docs") == {"type": "delete_success", "path": "docs"}
    assert not (root / "docs").exists()


async def test_paths_are_echoed_as_sent(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    absolute = str(root / "a.txt")
    reply = await ask(channel, outbox, {"action": "read", "path": absolute})
    assert reply == {"type": "file_content", "path": absolute, "content": "alpha"}
    reply = await ask(channel, outbox, {"action": "read", "path": "./x/../a.txt"})
    assert reply["path"] == "./x/../a.txt"


@pytest.mark.parametrize("request_id", ["r-1", 7, 2.5, ""])
async def test_ids_are_echoed(channel: FsChannel, outbox: Outbox, request_id: object) -> None:
    reply = await ask(channel, outbox, {"action": "read", "path": "a.txt", "id": request_id})
    assert reply["id"] == request_id
    assert reply["content"] == "alpha"
    reply = await ask(channel, outbox, {"action": "read", "path": "nope", "id": request_id})
    assert reply["type"] == "error"
    assert reply["id"] == request_id
    reply = await ask(channel, outbox, {"action": "read", "id": request_id})
    assert reply["message"].startswith("Invalid payload: ")
    assert reply["id"] == request_id


async def test_no_id_no_id_field(channel: FsChannel, outbox: Outbox) -> None:
    assert "id" not in await ask(channel, outbox, {"action": "unwatch"})
    assert "id" not in await ask(channel, outbox, {"action": "unwatch", "id": None})


async def test_write_creates_parents_atomically(
    channel: FsChannel, outbox: Outbox, root: Path
) -> None:
    reply = await ask(channel, outbox, {"action": "write", "path": "x/y/z.txt", "content": "1"})
    assert reply["type"] == "write_success"
    reply = await ask(channel, outbox, {"action": "write", "path": "x/y/z.txt", "content": "22"})
    assert reply["type"] == "write_success"
    assert (root / "x/y/z.txt").read_text() == "22"
    assert os.listdir(root / "x/y") == ["z.txt"]  # no temp file left behind


async def test_write_errors(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    (root / "d").mkdir()
    reply = await ask(channel, outbox, {"action": "write", "path": "d", "content": "x"})
    assert reply["type"] == "error"
    assert reply["message"].startswith("Failed to write: ")
    reply = await ask(channel, outbox, {"action": "write", "path": "a.txt/x", "content": "x"})
    assert reply["message"].startswith("Failed to write: ")
    reply = await ask(channel, outbox, {"action": "write", "path": "s", "content": "\ud800"})
    assert reply["message"] == "Failed to write: content is not valid Unicode"


async def test_write_through_a_link_inside_writes_the_target(
    channel: FsChannel, outbox: Outbox, root: Path
) -> None:
    (root / "alias").symlink_to(root / "a.txt")
    reply = await ask(channel, outbox, {"action": "write", "path": "alias", "content": "new"})
    assert reply["type"] == "write_success"
    assert (root / "a.txt").read_text() == "new"
    assert (root / "alias").is_symlink()


async def test_read_limits(root: Path, outbox: Outbox, nursery: trio.Nursery) -> None:
    channel = FsChannel(root, outbox.send, nursery, FsLimits(max_read_bytes=10))
    (root / "ten.txt").write_text("0123456789")
    (root / "eleven.txt").write_text("0123456789A")
    (root / "bin").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (root / "latin1").write_bytes("café".encode("latin-1"))
    assert (await ask(channel, outbox, {"action": "read", "path": "ten.txt"}))["content"] == (
        "0123456789"
    )
    reply = await ask(channel, outbox, {"action": "read", "path": "eleven.txt"})
    assert reply == {
        "type": "error",
        "message": "Failed to read: file too large (11 bytes, limit 10)",
    }
    for name in ("bin", "latin1"):
        reply = await ask(channel, outbox, {"action": "read", "path": name})
        assert reply["message"] == "Failed to read: binary file, not UTF-8 text"


async def test_read_errors(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    reply = await ask(channel, outbox, {"action": "read", "path": "missing.txt"})
    assert reply == {"type": "error", "message": "Failed to read: No such file or directory"}
    reply = await ask(channel, outbox, {"action": "read", "path": ""})
    assert reply["message"] == "Failed to read: Is a directory"
    os.mkfifo(root / "fifo")
    with trio.fail_after(2):  # must not block on a FIFO with no writer
        reply = await ask(channel, outbox, {"action": "read", "path": "fifo"})
    assert reply["message"] == "Failed to read: not a regular file"


async def test_mkdir_is_p(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    for _ in range(2):
        reply = await ask(channel, outbox, {"action": "mkdir", "path": "p/q/r"})
        assert reply == {"type": "mkdir_success", "path": "p/q/r"}
    assert (root / "p/q/r").is_dir()
    reply = await ask(channel, outbox, {"action": "mkdir", "path": "a.txt"})
    assert reply["message"].startswith("Failed to mkdir: ")


async def test_delete(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    (root / "tree/sub").mkdir(parents=True)
    (root / "tree/sub/f").write_text("x")
    (root / "keep").mkdir()
    (root / "keep/f").write_text("x")
    (root / "keep_link").symlink_to(root / "keep")
    assert (await ask(channel, outbox, {"action": "delete", "path": "tree"}))["type"] == (
        "delete_success"
    )
    assert not (root / "tree").exists()
    # A link goes, never what it points to.
    await ask(channel, outbox, {"action": "delete", "path": "keep_link"})
    assert not (root / "keep_link").is_symlink()
    assert (root / "keep/f").exists()
    await ask(channel, outbox, {"action": "delete", "path": "a.txt"})
    assert not (root / "a.txt").exists()
    reply = await ask(channel, outbox, {"action": "delete", "path": "a.txt"})
    assert reply == {"type": "error", "message": "Failed to delete file: No such file or directory"}


async def test_rename(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    (root / "b.txt").write_text("beta")
    (root / "d").mkdir()
    reply = await ask(channel, outbox, {"action": "rename", "from": "a.txt", "to": "b.txt"})
    assert reply == {"type": "error", "message": "Failed to rename: destination already exists"}
    assert (root / "b.txt").read_text() == "beta"
    reply = await ask(channel, outbox, {"action": "rename", "from": "a.txt", "to": "d/a.txt"})
    assert reply["type"] == "rename_success"
    assert (root / "d/a.txt").read_text() == "alpha"
    reply = await ask(channel, outbox, {"action": "rename", "from": "d", "to": "e"})
    assert reply["type"] == "rename_success"
    reply = await ask(channel, outbox, {"action": "rename", "from": "e", "to": "no/such/dir"})
    assert reply["message"].startswith("Failed to rename: ")
    reply = await ask(channel, outbox, {"action": "rename", "from": "b.txt", "to": "b.txt"})
    assert reply["type"] == "rename_success"


async def test_rename_moves_the_link(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    (root / "alias").symlink_to("a.txt")
    await ask(channel, outbox, {"action": "rename", "from": "alias", "to": "alias2"})
    assert (root / "alias2").is_symlink()
    assert (root / "a.txt").read_text() == "alpha"


# --- list ---------------------------------------------------------------------------------------


async def test_list_shapes(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    for link in ("etc_link", "out_dir", "out_file", "dangling"):
        (root / link).unlink()
    (root / "sub/deeper").mkdir(parents=True)
    (root / "sub/deeper/f.txt").write_text("xyz")
    (root / "sub-file").write_text("")
    (root / "sub_link").symlink_to(root / "sub")

    flat = await ask(channel, outbox, {"action": "list", "path": ""})
    assert flat["type"] == "file_list"
    assert flat["path"] == ""
    assert "truncated" not in flat
    assert [e["name"] for e in flat["entries"]] == ["a.txt", "sub", "sub-file", "sub_link"]
    a, sub, _, sub_link = flat["entries"]
    assert a["path"] == str(root / "a.txt")
    assert a["is_dir"] is False
    assert a["size"] == 5
    assert isinstance(a["modified"], int)
    assert list(a) == ["path", "name", "is_dir", "size", "modified"]
    assert sub == {
        "path": str(root / "sub"),
        "name": "sub",
        "is_dir": True,
        "modified": int((root / "sub").stat().st_mtime),
    }
    assert sub_link["is_dir"] is True  # a link inside the root describes its target

    deep = await ask(channel, outbox, {"action": "list", "path": "", "recursive": True})
    paths = [os.path.relpath(e["path"], root) for e in deep["entries"]]
    # Tree order, and a linked folder is listed but not descended into.
    assert paths == ["a.txt", "sub", "sub/deeper", "sub/deeper/f.txt", "sub-file", "sub_link"]


async def test_list_links_out_are_entries_not_doors(
    channel: FsChannel, outbox: Outbox, root: Path
) -> None:
    reply = await ask(channel, outbox, {"action": "list", "path": "", "recursive": True})
    names = {os.path.relpath(e["path"], root): e for e in reply["entries"]}
    assert set(names) == {"a.txt", "etc_link", "out_dir", "out_file", "dangling"}
    assert names["out_dir"]["is_dir"] is False  # described as the link, not its target
    assert names["out_file"]["size"] == len(os.readlink(root / "out_file"))


async def test_list_errors(channel: FsChannel, outbox: Outbox) -> None:
    reply = await ask(channel, outbox, {"action": "list", "path": "a.txt"})
    assert reply == {"type": "error", "message": "Invalid directory: a.txt"}
    reply = await ask(channel, outbox, {"action": "list", "path": "nope"})
    assert reply == {"type": "error", "message": "Invalid directory: nope"}


async def test_list_truncates_at_max_entries(
    root: Path, outbox: Outbox, nursery: trio.Nursery
) -> None:
    channel = FsChannel(root, outbox.send, nursery, FsLimits(max_list_entries=4))
    (root / "many").mkdir()
    for i in range(10):
        (root / "many" / f"f{i}").write_text("")
    reply = await ask(channel, outbox, {"action": "list", "path": "many"})
    assert reply["truncated"] is True
    assert len(reply["entries"]) == 4
    (root / "four").mkdir()
    for i in range(4):
        (root / "four" / f"f{i}").write_text("")
    assert "truncated" not in await ask(channel, outbox, {"action": "list", "path": "four"})


async def test_list_truncates_at_max_depth(
    root: Path, outbox: Outbox, nursery: trio.Nursery
) -> None:
    channel = FsChannel(root, outbox.send, nursery, FsLimits(max_list_depth=2))
    (root / "t/a/b/c").mkdir(parents=True)
    reply = await ask(channel, outbox, {"action": "list", "path": "t", "recursive": True})
    assert [os.path.relpath(e["path"], root) for e in reply["entries"]] == ["t/a", "t/a/b"]
    assert reply["truncated"] is True


# --- escapes ------------------------------------------------------------------------------------

ESCAPES: list[tuple[str, dict[str, Any], str]] = [
    ("dot-dot", {"action": "read", "path": "../outside/secret.txt"}, OUTSIDE_MESSAGE),
    ("nested dot-dot", {"action": "read", "path": "a/../../outside/secret.txt"}, OUTSIDE_MESSAGE),
    ("list parent", {"action": "list", "path": ".."}, OUTSIDE_MESSAGE),
    ("absolute", {"action": "read", "path": "/etc/passwd"}, OUTSIDE_MESSAGE),
    ("absolute sibling", {"action": "read", "path": "{outside}/secret.txt"}, OUTSIDE_MESSAGE),
    ("link to /etc, last", {"action": "list", "path": "etc_link"}, OUTSIDE_MESSAGE),
    ("link to /etc, middle", {"action": "read", "path": "etc_link/passwd"}, OUTSIDE_MESSAGE),
    ("link dir in the middle", {"action": "read", "path": "out_dir/secret.txt"}, OUTSIDE_MESSAGE),
    ("read link to a file out", {"action": "read", "path": "out_file"}, OUTSIDE_MESSAGE),
    ("list link out", {"action": "list", "path": "out_dir", "recursive": True}, OUTSIDE_MESSAGE),
    ("dangling link out", {"action": "write", "path": "dangling", "content": "x"}, OUTSIDE_MESSAGE),
    (
        "write through link",
        {"action": "write", "path": "out_file", "content": "x"},
        OUTSIDE_MESSAGE,
    ),
    ("write under link", {"action": "write", "path": "out_dir/n", "content": "x"}, OUTSIDE_MESSAGE),
    (
        "missing ancestor",
        {"action": "write", "path": "nope/../../outside/n", "content": "x"},
        OUTSIDE_MESSAGE,
    ),
    ("mkdir under link", {"action": "mkdir", "path": "out_dir/newdir"}, OUTSIDE_MESSAGE),
    ("mkdir dot-dot", {"action": "mkdir", "path": "../outside/newdir"}, OUTSIDE_MESSAGE),
    ("delete root", {"action": "delete", "path": ""}, "Cannot delete the workspace root"),
    ("delete dot", {"action": "delete", "path": "."}, "Cannot delete the workspace root"),
    ("delete root abs", {"action": "delete", "path": "{root}"}, "Cannot delete the workspace root"),
    ("delete parent", {"action": "delete", "path": ".."}, OUTSIDE_MESSAGE),
    ("delete link out", {"action": "delete", "path": "out_dir"}, OUTSIDE_MESSAGE),
    ("delete through link", {"action": "delete", "path": "out_dir/secret.txt"}, OUTSIDE_MESSAGE),
    (
        "rename in to out",
        {"action": "rename", "from": "a.txt", "to": "../outside/stolen.txt"},
        OUTSIDE_MESSAGE,
    ),
    (
        "rename out to in",
        {"action": "rename", "from": "../outside/secret.txt", "to": "stolen.txt"},
        OUTSIDE_MESSAGE,
    ),
    (
        "rename via link",
        {"action": "rename", "from": "out_dir/secret.txt", "to": "s.txt"},
        OUTSIDE_MESSAGE,
    ),
    (
        "rename root",
        {"action": "rename", "from": ".", "to": "x"},
        "Cannot rename the workspace root",
    ),
    ("NUL byte", {"action": "read", "path": "a.txt\0../../outside"}, OUTSIDE_MESSAGE),
    ("backslashes", {"action": "read", "path": "..\\..\\outside\\secret.txt"}, OUTSIDE_MESSAGE),
    ("watch parent", {"action": "watch", "path": "../outside"}, OUTSIDE_MESSAGE),
    ("watch absolute", {"action": "watch", "path": "{outside}"}, OUTSIDE_MESSAGE),
    ("watch link out", {"action": "watch", "path": "out_dir"}, OUTSIDE_MESSAGE),
]


@pytest.mark.parametrize(
    ("request_data", "message"), [e[1:] for e in ESCAPES], ids=[e[0] for e in ESCAPES]
)
async def test_escape_attempts_are_refused(
    channel: FsChannel,
    outbox: Outbox,
    root: Path,
    outside: Path,
    request_data: dict[str, Any],
    message: str,
) -> None:
    data = {
        key: value.format(root=root, outside=outside) if isinstance(value, str) else value
        for key, value in request_data.items()
    }
    before_out, before_in = snapshot(outside), snapshot(root)
    reply = await ask(channel, outbox, {**data, "id": "x"})
    assert reply == {"type": "error", "message": message, "id": "x"}
    assert snapshot(outside) == before_out
    assert snapshot(root) == before_in


@pytest.mark.parametrize("name", ["%2e%2e", "~", "..%2f..", "%2E%2E%5C"])
async def test_literal_names_stay_inside(
    channel: FsChannel, outbox: Outbox, root: Path, outside: Path, name: str
) -> None:
    before = snapshot(outside)
    reply = await ask(channel, outbox, {"action": "write", "path": f"{name}/x", "content": "1"})
    assert reply["type"] == "write_success"
    assert (root / name / "x").read_text() == "1"
    assert snapshot(outside) == before


# --- invalid payloads ---------------------------------------------------------------------------

INVALID: list[tuple[Any, str]] = [
    ("read", "expected a JSON object with an `action`"),
    ([{"action": "read"}], "expected a JSON object with an `action`"),
    (None, "expected a JSON object with an `action`"),
    ({}, "missing field `action`"),
    ({"path": "a"}, "missing field `action`"),
    ({"action": 3}, "unknown action of the wrong type, expected one of `watch`, `unwatch`"),
    ({"action": "chmod", "path": "a"}, "unknown action `chmod`, expected one of `watch`"),
    ({"action": "read"}, "missing field `path`"),
    ({"action": "read", "path": 1}, "invalid type for `path`: expected a string"),
    ({"action": "read", "path": None}, "invalid type for `path`: expected a string"),
    ({"action": "watch"}, "missing field `path`"),
    ({"action": "list", "path": "", "recursive": "yes"}, "invalid type for `recursive`"),
    ({"action": "write", "path": "a"}, "missing field `content`"),
    ({"action": "write", "path": "a", "content": b"x"}, "invalid type for `content`"),
    ({"action": "rename", "from": "a"}, "missing field `to`"),
    ({"action": "rename", "to": "a"}, "missing field `from`"),
    ({"action": "read", "path": "a", "id": True}, "invalid type for `id`"),
    ({"action": "read", "path": "a", "id": {"x": 1}}, "invalid type for `id`"),
]


@pytest.mark.parametrize(("data", "message"), INVALID)
async def test_invalid_payloads(
    channel: FsChannel, outbox: Outbox, data: Any, message: str
) -> None:
    reply = await ask(channel, outbox, data)
    assert reply["type"] == "error"
    assert reply["message"].startswith(f"Invalid payload: {message}")


def test_parse_request_ignores_unknown_fields() -> None:
    request, request_id = parse_request({"action": "list", "path": "a", "extra": 1, "id": 3})
    assert request_id == 3
    assert request.path == "a"  # type: ignore[union-attr]
    assert request.recursive is False  # type: ignore[union-attr]


# --- serve --------------------------------------------------------------------------------------


async def test_serve_answers_in_order(root: Path, outbox: Outbox) -> None:
    async with trio.open_nursery() as nursery:
        channel = FsChannel(root, outbox.send, nursery)
        send, receive = trio.open_memory_channel[Any](4)
        nursery.start_soon(channel.serve, receive)
        async with send:
            await send.send({"action": "write", "path": "n.txt", "content": "1", "id": 1})
            await send.send("garbage")
            await send.send({"action": "read", "path": "n.txt", "id": 2})
            await send.send({"action": "delete", "path": "n.txt", "id": 3})
    assert [(m["type"], m.get("id")) for m in outbox.take_all()] == [
        ("write_success", 1),
        ("error", None),
        ("file_content", 2),
        ("delete_success", 3),
    ]
